//! The RTSP state machine to step through: INIT, READY and PLAYING with the
//! SETUP / PLAY / PAUSE / TEARDOWN arrows between them, large enough to read
//! on a laptop. The current state is filled in; the requests possible from
//! it are drawn bold; each arrow a request has taken is lit with that
//! request's CSeq and the reply that moved it. Clicking an arrow (or a line
//! of the history under it) shows its messages in the wire log, so students
//! see the buttons, the state machine and the protocol as one thing.
//!
//! With TPC-3 chosen it draws the assignment's phases instead (connect;
//! Setup phase: name and port sent, session id received, Go sent; Transfer
//! phase: receiving; ended), each arrow captioned with the bytes that took
//! it, which a click shows in the wire log.

use egui::{
    Align2, Color32, FontId, Painter, Pos2, Rect, RichText, Role, Sense, Stroke, StrokeKind, pos2,
    vec2,
};

use super::status::state_color;
use super::view::{PlayerView, Step, UiCommand};
use crate::net::client::Tpc3Phase;
use crate::protocol::State;
use crate::protocol::rtsp::Method;

/// Box size for each state.
const BOX: egui::Vec2 = vec2(116.0, 38.0);
/// Vertical room between boxes: the arrow's name and two caption lines.
const GAP: f32 = 84.0;
const MARGIN: f32 = 10.0;
/// Room either side of the boxes for the arrows' names and captions.
const SIDE_ROOM: f32 = 128.0;
/// Room right of that for the long PLAYING -> INIT arrow.
const OUTER_ROOM: f32 = 22.0;
/// History lines shown under the diagram.
const HISTORY: usize = 8;

/// One arrow of the diagram.
struct Arrow {
    method: Method,
    from: State,
    to: State,
}

const fn arrow(method: Method, from: State, to: State) -> Arrow {
    Arrow { method, from, to }
}

/// Every transition of the state machine (RFC 2326 appendix A, as the lab
/// draws it).
const ARROWS: [Arrow; 5] = [
    arrow(Method::Setup, State::Init, State::Ready),
    arrow(Method::Play, State::Ready, State::Playing),
    arrow(Method::Pause, State::Playing, State::Ready),
    arrow(Method::Teardown, State::Ready, State::Init),
    arrow(Method::Teardown, State::Playing, State::Init),
];

/// The diagram's full size; it fills the width it is given beyond that.
pub fn min_width() -> f32 {
    2.0 * SIDE_ROOM + BOX.x + OUTER_ROOM + 2.0 * MARGIN
}

/// The panel's heading.
pub fn title(view: &PlayerView) -> &'static str {
    if view.tpc3() {
        "TPC-3 phases"
    } else {
        "RTSP state machine"
    }
}

pub fn ui(ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
    if view.tpc3() {
        return tpc3_ui(ui, view);
    }
    let mut command = None;
    let height = MARGIN * 2.0 + BOX.y * 3.0 + GAP * 2.0;
    let width = ui.available_width().max(min_width());
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::hover());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            Role::Image,
            true,
            format!("RTSP state diagram, current state {}", view.state.name()),
        )
    });

    let spare = (rect.width() - min_width()).max(0.0);
    let cx = rect.left() + MARGIN + spare / 2.0 + SIDE_ROOM + BOX.x / 2.0;
    let box_at = |row: f32| {
        Rect::from_min_size(
            pos2(cx - BOX.x / 2.0, rect.top() + MARGIN + row * (BOX.y + GAP)),
            BOX,
        )
    };
    let boxes = [
        (State::Init, box_at(0.0)),
        (State::Ready, box_at(1.0)),
        (State::Playing, box_at(2.0)),
    ];
    let box_of = |s: State| boxes.iter().find(|(b, _)| *b == s).map(|(_, r)| *r);

    let name_font = FontId::proportional(15.0);
    let caption_font = FontId::proportional(12.5);
    let visuals = ui.visuals().clone();
    let lit = Color32::from_rgb(60, 140, 230);
    let waiting = view.steps.last().filter(|s| s.waiting());

    for (i, a) in ARROWS.iter().enumerate() {
        let (Some(upper), Some(lower)) = (box_of(a.from), box_of(a.to)) else {
            continue;
        };
        let down = a.to != State::Init && matches!(a.method, Method::Setup | Method::Play);
        let (from_pos, to_pos, label_pos, align, outer) = match (down, a.from, a.to) {
            (true, _, _) => {
                let x = cx - 18.0;
                let mid = (upper.bottom() + lower.top()) / 2.0;
                (
                    pos2(x, upper.bottom()),
                    pos2(x, lower.top()),
                    pos2(x - 10.0, mid),
                    Align2::RIGHT_CENTER,
                    false,
                )
            }
            (false, State::Playing, State::Init) => {
                let x = cx + BOX.x / 2.0 + SIDE_ROOM + OUTER_ROOM / 2.0;
                (
                    pos2(x, upper.center().y),
                    pos2(x, lower.center().y),
                    pos2(x - 8.0, box_at(1.0).center().y),
                    Align2::RIGHT_CENTER,
                    true,
                )
            }
            (false, _, _) => {
                // Up: the source box is the lower one.
                let x = cx + 18.0;
                let mid = (lower.bottom() + upper.top()) / 2.0;
                (
                    pos2(x, upper.top()),
                    pos2(x, lower.bottom()),
                    pos2(x + 10.0, mid),
                    Align2::LEFT_CENTER,
                    false,
                )
            }
        };
        let step = view.last_step(&a.method, a.from, a.to);
        let possible = view.state == a.from && view.in_flight.is_none();
        let on_its_way = waiting.is_some_and(|s| s.method == a.method && s.from == a.from)
            && view.state == a.from;
        let color = if on_its_way || step.is_some_and(|s| is_latest(view, s)) {
            lit
        } else if possible {
            visuals.strong_text_color()
        } else {
            visuals.weak_text_color()
        };
        let stroke = Stroke::new(if possible || on_its_way { 2.5 } else { 1.5 }, color);
        let painter = ui.painter();
        if outer {
            let (start, end) = (
                box_of(a.from).map_or(from_pos, |r| r.right_center()),
                box_of(a.to).map_or(to_pos, |r| r.right_center()),
            );
            painter.line_segment([start, pos2(from_pos.x, start.y)], stroke);
            painter.line_segment([pos2(from_pos.x, start.y), pos2(from_pos.x, end.y)], stroke);
            draw_arrow(painter, pos2(from_pos.x, end.y), end, stroke);
        } else {
            draw_arrow(painter, from_pos, to_pos, stroke);
        }

        // The name, and under it what the last request on this arrow was.
        let mut lines = vec![(a.method.to_string(), name_font.clone(), color)];
        if on_its_way {
            let cseq = waiting
                .and_then(|s| s.cseq)
                .map_or(String::new(), |c| format!("CSeq {c} "));
            lines.push((format!("{cseq}sent..."), caption_font.clone(), color));
        } else if let Some(step) = step {
            lines.push((caption(step), caption_font.clone(), color));
        }
        let text_rect = paint_lines(painter, label_pos, align, &lines);
        let id = ui.scope_id().with(("transition", i));
        let name = format!(
            "{} {} -> {}{}",
            a.method,
            a.from.name(),
            a.to.name(),
            step.map_or(String::new(), |s| format!(": {}", caption(s)))
        );
        let click = ui.interact(text_rect.expand(4.0), id, Sense::click());
        click.widget_info(|| egui::WidgetInfo::labeled(Role::Button, step.is_some(), &name));
        let click = if step.is_some() {
            click.on_hover_text("Show this request and its reply in the wire log.")
        } else {
            click.on_hover_text(format!(
                "{} has not gone {} -> {} yet.",
                a.method,
                a.from.name(),
                a.to.name()
            ))
        };
        if click.clicked()
            && let Some(step) = step
        {
            command = Some(UiCommand::ShowWire(step.entries()));
        }
    }

    let painter = ui.painter();
    for (state, r) in boxes {
        let color = state_color(ui, state);
        if state == view.state {
            painter.rect_filled(r, 8.0, color);
            let text_color = if color.intensity() > 0.5 {
                Color32::BLACK
            } else {
                Color32::WHITE
            };
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                state.name(),
                FontId::proportional(17.0),
                text_color,
            );
        } else {
            painter.rect_stroke(r, 8.0, Stroke::new(1.5, color), StrokeKind::Inside);
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                state.name(),
                FontId::proportional(17.0),
                visuals.text_color(),
            );
        }
    }

    // The newest request, when it moved nothing: beside the state it was
    // sent in, in red, so the refusal is seen where it happened.
    if let Some(step) = view.steps.last().filter(|s| !s.moved() && !s.waiting())
        && let Some(r) = box_of(step.from)
    {
        let color = ui.visuals().error_fg_color;
        let lines = [
            (
                format!("{} refused", step.method),
                caption_font.clone(),
                color,
            ),
            (caption_with(step, code_only), caption_font.clone(), color),
        ];
        let lines = if step.unanswered {
            [
                (
                    format!("{} unanswered", step.method),
                    caption_font.clone(),
                    color,
                ),
                lines[1].clone(),
            ]
        } else {
            lines
        };
        let rect = paint_lines(
            ui.painter(),
            r.left_center() - vec2(12.0, 0.0),
            Align2::RIGHT_CENTER,
            &lines,
        );
        let name = format!(
            "{} in {}: {}",
            step.method,
            step.from.name(),
            full_caption(step)
        );
        let click = ui.interact(
            rect.expand(4.0),
            ui.scope_id().with("refused"),
            Sense::click(),
        );
        click.widget_info(|| egui::WidgetInfo::labeled(Role::Button, true, &name));
        if click
            .on_hover_text("Show this request and its reply in the wire log.")
            .clicked()
        {
            command = Some(UiCommand::ShowWire(step.entries()));
        }
    }

    ui.add_space(6.0);
    if let Some(c) = history(ui, view) {
        command = Some(c);
    }
    command
}

/// Whether `step` is the newest one: the arrow the state machine took last.
fn is_latest(view: &PlayerView, step: &Step) -> bool {
    view.steps
        .iter()
        .rev()
        .find(|s| s.moved())
        .is_some_and(|s| s.request == step.request)
}

/// "CSeq 3: 200 OK", short enough for an arrow.
fn caption(step: &Step) -> String {
    caption_with(step, short_status)
}

/// "CSeq 1: 455 Method Not Valid in This State", for the history.
fn full_caption(step: &Step) -> String {
    caption_with(step, str::to_owned)
}

fn caption_with(step: &Step, status_text: fn(&str) -> String) -> String {
    let cseq = step.cseq.map_or(String::new(), |c| format!("CSeq {c}: "));
    match (&step.status, step.unanswered) {
        (Some(status), _) => format!("{cseq}{}", status_text(status)),
        (None, true) => format!("{cseq}no reply"),
        (None, false) => format!("{cseq}sent..."),
    }
}

/// "455 Method Not Valid in This State" is long for a caption: the code
/// and the first words.
fn short_status(status: &str) -> String {
    const MAX: usize = 22;
    if status.chars().count() <= MAX {
        return status.to_owned();
    }
    let cut: String = status.chars().take(MAX - 3).collect();
    format!("{}...", cut.trim_end())
}

/// Only the status code ("455"): a refusal's label sits in little room.
fn code_only(status: &str) -> String {
    status.split(' ').next().unwrap_or(status).to_owned()
}

/// Draw `lines` as a block anchored at `pos`; returns the block's rect.
fn paint_lines(
    painter: &Painter,
    pos: Pos2,
    align: Align2,
    lines: &[(String, FontId, Color32)],
) -> Rect {
    let galleys: Vec<_> = lines
        .iter()
        .map(|(text, font, color)| painter.layout_no_wrap(text.clone(), font.clone(), *color))
        .collect();
    let width = galleys.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let height: f32 = galleys.iter().map(|g| g.size().y).sum();
    let block = align.anchor_size(pos, vec2(width, height));
    let mut y = block.top();
    for galley in galleys {
        let x = match align.x() {
            egui::Align::Min => block.left(),
            egui::Align::Center => block.center().x - galley.size().x / 2.0,
            egui::Align::Max => block.right() - galley.size().x,
        };
        let h = galley.size().y;
        painter.galley(pos2(x, y), galley, Color32::PLACEHOLDER);
        y += h;
    }
    block
}

/// The last requests, newest first, each a line to click.
fn history(ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
    let mut command = None;
    ui.label(RichText::new("Requests, newest first").weak());
    if view.steps.is_empty() {
        ui.label(
            RichText::new("Press SETUP: each request and its reply appear here and on the arrows.")
                .italics()
                .weak(),
        );
        return None;
    }
    for step in view.steps.iter().rev().take(HISTORY) {
        let outcome = if step.moved() && step.from != step.to {
            format!("{} -> {}", step.from.name(), step.to.name())
        } else if step.waiting() {
            format!("in {}, waiting", step.from.name())
        } else {
            format!("in {}, stays", step.from.name())
        };
        let text = format!("{} ({outcome}) {}", step.method, full_caption(step));
        let color = if step.moved() || step.waiting() {
            ui.visuals().text_color()
        } else {
            ui.visuals().error_fg_color
        };
        if ui
            .add(egui::Button::new(RichText::new(text).color(color)).frame(false))
            .on_hover_text("Show this request and its reply in the wire log.")
            .clicked()
        {
            command = Some(UiCommand::ShowWire(step.entries()));
        }
    }
    command
}

/// A line with a fixed-size head at `to` (egui's own arrow scales its head
/// with the length, which looks odd on long arrows).
fn draw_arrow(painter: &Painter, from: Pos2, to: Pos2, stroke: Stroke) {
    painter.line_segment([from, to], stroke);
    let dir = (to - from).normalized();
    let side = vec2(-dir.y, dir.x);
    let back = to - dir * 9.0;
    painter.line_segment([to, back + side * 5.0], stroke);
    painter.line_segment([to, back - side * 5.0], stroke);
}

/// TPC-3's box size: the phases' names are longer than RTSP's states.
const TPC3_BOX: egui::Vec2 = vec2(170.0, 32.0);
/// Room between TPC-3's boxes for an arrow and its caption.
const TPC3_GAP: f32 = 36.0;
/// Room left of the boxes for "Setup phase" and "Transfer phase".
const TPC3_STAGE_ROOM: f32 = 96.0;

/// What took each arrow into `to`, when no message did.
fn tpc3_arrow_name(to: Tpc3Phase) -> &'static str {
    match to {
        Tpc3Phase::NameSent => "Connect",
        Tpc3Phase::SessionId => "the answer",
        Tpc3Phase::GoSent => "Go",
        Tpc3Phase::Receiving => "the first datagram",
        Tpc3Phase::Ended => "end of file, close or Stop",
        Tpc3Phase::NotConnected => "",
    }
}

/// The message on the wire that led to `phase`, in this transfer.
fn tpc3_entry(view: &PlayerView, phase: Tpc3Phase) -> Option<&super::view::WireEntry> {
    let (_, id) = view.tpc3_entries.iter().find(|(p, _)| *p == phase)?;
    view.wire.iter().find(|e| e.id == *id)
}

/// How a message is quoted on an arrow: its text on one line, short.
fn quoted(entry: &super::view::WireEntry) -> String {
    const MAX: usize = 24;
    let text = entry.text.replace('\n', " ");
    let text = if text.chars().count() > MAX {
        format!("{}...", text.chars().take(MAX - 3).collect::<String>())
    } else {
        text
    };
    let how = match entry.direction {
        crate::net::client::Direction::Sent => "sent",
        crate::net::client::Direction::Received => "received",
    };
    format!("\"{text}\" {how}")
}

/// The assignment's phases as a column of boxes, top to bottom.
fn tpc3_ui(ui: &mut egui::Ui, view: &PlayerView) -> Option<UiCommand> {
    let mut command = None;
    let phases = Tpc3Phase::ALL;
    let rows = phases.len() as f32;
    let height = MARGIN * 2.0 + TPC3_BOX.y * rows + TPC3_GAP * (rows - 1.0);
    let width = ui.available_width().max(min_width());
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::hover());
    let now = view.tpc3_phase;
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            Role::Image,
            true,
            format!("TPC-3 phase diagram, current phase {}", now.name()),
        )
    });
    let left = rect.left() + MARGIN + TPC3_STAGE_ROOM;
    let box_at = |i: usize| {
        Rect::from_min_size(
            pos2(
                left,
                rect.top() + MARGIN + i as f32 * (TPC3_BOX.y + TPC3_GAP),
            ),
            TPC3_BOX,
        )
    };
    let visuals = ui.visuals().clone();
    let lit = Color32::from_rgb(60, 140, 230);
    let caption_font = FontId::proportional(12.5);
    let at = phases.iter().position(|p| *p == now).unwrap_or(0);
    // Ended straight from the Setup phase (-1, an error): the boxes in
    // between were skipped.
    let skipped = |i: usize| {
        now == Tpc3Phase::Ended
            && i < at
            && i > 0
            && !view.tpc3_entries.iter().any(|(p, _)| *p == phases[i])
            && phases[i] != Tpc3Phase::Receiving
    };

    // The assignment's two phases, bracketed on the left.
    for (stage, first, last) in [("Setup phase", 1, 3), ("Transfer phase", 4, 4)] {
        let (top, bottom) = (box_at(first).top(), box_at(last).bottom());
        let x = left - 10.0;
        let stroke = Stroke::new(1.0, visuals.weak_text_color());
        let painter = ui.painter();
        painter.line_segment([pos2(x, top), pos2(x, bottom)], stroke);
        painter.line_segment([pos2(x, top), pos2(x + 5.0, top)], stroke);
        painter.line_segment([pos2(x, bottom), pos2(x + 5.0, bottom)], stroke);
        painter.text(
            pos2(x - 6.0, (top + bottom) / 2.0),
            Align2::RIGHT_CENTER,
            stage,
            FontId::proportional(13.0),
            visuals.text_color(),
        );
    }

    for (i, phase) in phases.iter().copied().enumerate() {
        let r = box_at(i);
        let color = super::status::state_color(ui, phase.state());
        let painter = ui.painter();
        if phase == now {
            painter.rect_filled(r, 8.0, color);
            let text_color = if color.intensity() > 0.5 {
                Color32::BLACK
            } else {
                Color32::WHITE
            };
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                phase.name(),
                FontId::proportional(15.0),
                text_color,
            );
        } else {
            let stroke_color = if i < at && !skipped(i) { lit } else { color };
            painter.rect_stroke(r, 8.0, Stroke::new(1.5, stroke_color), StrokeKind::Inside);
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                phase.name(),
                FontId::proportional(15.0),
                visuals.text_color(),
            );
        }
        if i == 0 {
            continue;
        }
        // The arrow into this phase from the one above.
        let from = box_at(i - 1);
        let taken = i <= at && !skipped(i) && now != Tpc3Phase::NotConnected;
        let next = i == at + 1 && view.in_flight.is_none();
        let arrow_color = if taken {
            lit
        } else if next {
            visuals.strong_text_color()
        } else {
            visuals.weak_text_color()
        };
        let x = r.left() + 24.0;
        draw_arrow(
            ui.painter(),
            pos2(x, from.bottom()),
            pos2(x, r.top()),
            Stroke::new(if taken || next { 2.0 } else { 1.2 }, arrow_color),
        );
        let entry = tpc3_entry(view, phase).filter(|_| taken || phase == Tpc3Phase::Ended);
        let caption = entry.map_or_else(|| tpc3_arrow_name(phase).to_owned(), quoted);
        let text_rect = paint_lines(
            ui.painter(),
            pos2(x + 10.0, (from.bottom() + r.top()) / 2.0),
            Align2::LEFT_CENTER,
            &[(caption.clone(), caption_font.clone(), arrow_color)],
        );
        let click = ui.interact(
            text_rect.expand(4.0),
            ui.scope_id().with(("tpc3-arrow", i)),
            Sense::click(),
        );
        let name = format!("{} -> {}: {caption}", phases[i - 1].name(), phase.name());
        click.widget_info(|| egui::WidgetInfo::labeled(Role::Button, entry.is_some(), &name));
        if let Some(entry) = entry
            && click
                .on_hover_text("Show this message in the wire log.")
                .clicked()
        {
            command = Some(UiCommand::ShowWire(vec![entry.id]));
        }
    }
    ui.add_space(6.0);
    ui.label(
        RichText::new(
            "Connect sends the file name and your UDP port; the server answers a session \
             id (or -1: no such file); Go starts the transfer. Every datagram's SSRC must \
             be the session id.",
        )
        .weak(),
    );
    command
}
