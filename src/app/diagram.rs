//! A small drawing of the RTSP state machine (INIT, READY, PLAYING and the
//! SETUP / PLAY / PAUSE / TEARDOWN arrows between them) with the current
//! state filled in and the requests possible from it drawn bold, so students
//! see the buttons and the state machine as one thing.

use egui::{
    Align2, Color32, FontId, Painter, Pos2, Rect, Role, Sense, Stroke, StrokeKind, pos2, vec2,
};

use super::status::state_color;
use crate::protocol::State;

const BOX: egui::Vec2 = vec2(84.0, 26.0);
/// Vertical room between boxes for the arrows.
const GAP: f32 = 44.0;
const MARGIN: f32 = 8.0;
/// Room left of the centre line for the SETUP / PLAY labels.
const LEFT_ROOM: f32 = 66.0;
/// Room right of the centre line for the up arrows' labels and the long
/// PLAYING -> INIT arrow.
const RIGHT_ROOM: f32 = 140.0;

pub fn ui(ui: &mut egui::Ui, current: State) {
    let height = MARGIN * 2.0 + BOX.y * 3.0 + GAP * 2.0;
    let width = ui.available_width().max(LEFT_ROOM + RIGHT_ROOM);
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::hover());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            Role::Image,
            true,
            format!("RTSP state diagram, current state {}", current.name()),
        )
    });
    if !ui.is_rect_visible(rect) {
        return;
    }

    let spare = (rect.width() - LEFT_ROOM - RIGHT_ROOM).max(0.0);
    let cx = rect.left() + spare / 2.0 + LEFT_ROOM;
    let box_at = |row: f32| {
        Rect::from_min_size(
            pos2(cx - BOX.x / 2.0, rect.top() + MARGIN + row * (BOX.y + GAP)),
            BOX,
        )
    };
    let init = box_at(0.0);
    let ready = box_at(1.0);
    let playing = box_at(2.0);

    let painter = ui.painter();
    let visuals = ui.visuals();
    let font = FontId::proportional(12.0);
    let weak = Stroke::new(1.0, visuals.weak_text_color());
    let strong = Stroke::new(2.0, visuals.strong_text_color());
    let from = |state: State| if state == current { strong } else { weak };
    let label = |pos: Pos2, anchor: Align2, text: &str, stroke: Stroke| {
        painter.text(pos, anchor, text, font.clone(), stroke.color);
    };

    // Down: SETUP and PLAY on the left of the centre line.
    for (upper, lower, name, source) in [
        (init, ready, "SETUP", State::Init),
        (ready, playing, "PLAY", State::Ready),
    ] {
        let x = cx - 14.0;
        let stroke = from(source);
        arrow(
            painter,
            pos2(x, upper.bottom()),
            pos2(x, lower.top()),
            stroke,
        );
        let mid = (upper.bottom() + lower.top()) / 2.0;
        label(pos2(x - 6.0, mid), Align2::RIGHT_CENTER, name, stroke);
    }
    // Up: TEARDOWN (READY -> INIT) and PAUSE on the right.
    for (upper, lower, name, source) in [
        (init, ready, "TEARDOWN", State::Ready),
        (ready, playing, "PAUSE", State::Playing),
    ] {
        let x = cx + 14.0;
        let stroke = from(source);
        arrow(
            painter,
            pos2(x, lower.top()),
            pos2(x, upper.bottom()),
            stroke,
        );
        let mid = (upper.bottom() + lower.top()) / 2.0;
        label(pos2(x + 6.0, mid), Align2::LEFT_CENTER, name, stroke);
    }
    // TEARDOWN from PLAYING goes round the outside, back to INIT.
    let stroke = from(State::Playing);
    let out_x = cx + RIGHT_ROOM - 8.0;
    let (start, end) = (playing.right_center(), init.right_center());
    painter.line_segment([start, pos2(out_x, start.y)], stroke);
    painter.line_segment([pos2(out_x, start.y), pos2(out_x, end.y)], stroke);
    arrow(painter, pos2(out_x, end.y), end, stroke);
    label(
        pos2(out_x - 4.0, ready.center().y),
        Align2::RIGHT_CENTER,
        "TEARDOWN",
        stroke,
    );

    for (state, r) in [
        (State::Init, init),
        (State::Ready, ready),
        (State::Playing, playing),
    ] {
        let color = state_color(ui, state);
        if state == current {
            painter.rect_filled(r, 6.0, color);
            let text_color = if color.intensity() > 0.5 {
                Color32::BLACK
            } else {
                Color32::WHITE
            };
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                state.name(),
                font.clone(),
                text_color,
            );
        } else {
            painter.rect_stroke(r, 6.0, Stroke::new(1.0, color), StrokeKind::Inside);
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                state.name(),
                font.clone(),
                visuals.text_color(),
            );
        }
    }
}

/// A line with a fixed-size head at `to` (egui's own arrow scales its head
/// with the length, which looks odd on long arrows).
fn arrow(painter: &Painter, from: Pos2, to: Pos2, stroke: Stroke) {
    painter.line_segment([from, to], stroke);
    let dir = (to - from).normalized();
    let side = vec2(-dir.y, dir.x);
    let back = to - dir * 7.0;
    painter.line_segment([to, back + side * 4.0], stroke);
    painter.line_segment([to, back - side * 4.0], stroke);
}
