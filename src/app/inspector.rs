//! The RTP inspector: the last packets in a table and, for the one picked,
//! its header decoded field by field and drawn as the handout draws it:
//! the 12 bytes in hex and in bits, each field's bits coloured and
//! labelled, the value each field should have, and a mark on the field
//! the client's check refused. For RFC 2435 payloads also the JPEG main
//! header (type-specific, fragment offset, type, Q, width, height), the
//! restart marker header and the quantization table header. Freeze to
//! read; the video goes on.

use egui::{Color32, FontId, Grid, RichText, Sense, Stroke, StrokeKind, vec2};

use super::history::History;
use crate::net::client::{PacketRecord, PacketStatus};
use crate::protocol::rtp::DropReason;

/// Rows of the packet table.
const TABLE_ROWS: usize = 300;

/// One header field: where its bits are, its value and what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// First bit, counted from the start of the header (bit 0 = the most
    /// significant bit of byte 0), and how many.
    pub start: usize,
    pub bits: usize,
    pub value: u64,
    /// What the lab's handout and RFC 3550 say it should be.
    pub expected: String,
    /// The client's check refused the packet for this field.
    pub refused: bool,
}

/// The RTP header's fields of `head` (at least 12 bytes), with the check
/// that refused it, if any.
pub fn rtp_fields(head: &[u8], status: PacketStatus) -> Option<Vec<Field>> {
    let refused = match status {
        PacketStatus::Dropped(r) => Some(r),
        PacketStatus::Duplicate | PacketStatus::Late => Some(DropReason::Sequence),
        _ => None,
    };
    header_fields(head, refused)
}

/// The RTP header's fields of `head` (at least 12 bytes), marking the one
/// `refused` names.
pub fn header_fields(head: &[u8], refused: Option<DropReason>) -> Option<Vec<Field>> {
    if head.len() < 12 {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let f = |name, start, bits, value: u64, expected: &str, reason: Option<DropReason>| Field {
        name,
        start,
        bits,
        value,
        expected: expected.to_string(),
        refused: reason.is_some() && reason == refused,
    };
    Some(vec![
        f(
            "V",
            0,
            2,
            (head[0] >> 6) as u64,
            "2",
            Some(DropReason::Version),
        ),
        f(
            "P",
            2,
            1,
            ((head[0] >> 5) & 1) as u64,
            "0",
            Some(DropReason::Padding),
        ),
        f(
            "X",
            3,
            1,
            ((head[0] >> 4) & 1) as u64,
            "0",
            Some(DropReason::Extension),
        ),
        f(
            "CC",
            4,
            4,
            (head[0] & 0x0f) as u64,
            "0",
            Some(DropReason::CsrcCount),
        ),
        f(
            "M",
            8,
            1,
            (head[1] >> 7) as u64,
            "1 on a frame's last packet",
            Some(DropReason::Marker),
        ),
        f(
            "PT",
            9,
            7,
            (head[1] & 0x7f) as u64,
            "26 (JPEG)",
            Some(DropReason::PayloadType),
        ),
        f(
            "Sequence number",
            16,
            16,
            u16::from_be_bytes([head[2], head[3]]) as u64,
            "the previous one + 1",
            Some(DropReason::Sequence),
        ),
        f(
            "Timestamp",
            32,
            32,
            word(4) as u64,
            "never going back; one per frame",
            Some(DropReason::Timestamp),
        ),
        f(
            "SSRC",
            64,
            32,
            word(8) as u64,
            "the same in every packet",
            Some(DropReason::Ssrc),
        ),
    ])
}

/// The RFC 2435 headers after the RTP header, where there are any: main
/// header, restart marker header (types 64-127), quantization table
/// header (Q 128-255, first packet of a frame). Bits count from the
/// payload's start.
pub fn jpeg_fields(payload: &[u8]) -> Vec<Field> {
    if payload.len() < 8 || payload.starts_with(&[0xff, 0xd8]) {
        return Vec::new();
    }
    let f = |name, start, bits, value: u64, expected: &str| Field {
        name,
        start,
        bits,
        value,
        expected: expected.to_string(),
        refused: false,
    };
    let offset = u32::from_be_bytes([0, payload[1], payload[2], payload[3]]);
    let (type_code, q) = (payload[4], payload[5]);
    let mut fields = vec![
        f("Type-specific", 0, 8, payload[0] as u64, "0"),
        f(
            "Fragment offset",
            8,
            24,
            offset as u64,
            "bytes of the frame before this packet",
        ),
        f(
            "Type",
            32,
            8,
            type_code as u64,
            "0/1 (4:2:2 / 4:2:0), +64 with restart markers",
        ),
        f(
            "Q",
            40,
            8,
            q as u64,
            "1-99: tables from Q; 128-255: tables in the packet",
        ),
        f("Width", 48, 8, payload[6] as u64, "width / 8"),
        f("Height", 56, 8, payload[7] as u64, "height / 8"),
    ];
    let mut at = 8;
    if (64..128).contains(&type_code) && payload.len() >= at + 4 {
        let w = |i: usize| u16::from_be_bytes([payload[i], payload[i + 1]]) as u64;
        fields.push(f(
            "Restart interval",
            64,
            16,
            w(8),
            "MCUs between restart markers",
        ));
        fields.push(f(
            "F",
            80,
            1,
            (payload[10] >> 7) as u64,
            "1: first of a restart interval",
        ));
        fields.push(f(
            "L",
            81,
            1,
            ((payload[10] >> 6) & 1) as u64,
            "1: last of a restart interval",
        ));
        fields.push(f(
            "Restart count",
            82,
            14,
            w(10) & 0x3fff,
            "0x3FFF or the interval's number",
        ));
        at += 4;
    }
    if q >= 128 && offset == 0 && payload.len() >= at + 4 {
        let s = at * 8;
        fields.push(f("MBZ", s, 8, payload[at] as u64, "0"));
        fields.push(f(
            "Precision",
            s + 8,
            8,
            payload[at + 1] as u64,
            "0 (8-bit tables)",
        ));
        fields.push(f(
            "Length",
            s + 16,
            16,
            u16::from_be_bytes([payload[at + 2], payload[at + 3]]) as u64,
            "128 for two 8-bit tables",
        ));
    }
    fields
}

/// The inspector's own state: which packet is picked.
#[derive(Default)]
pub struct InspectorPanel {
    /// Arrival instant and sequence number of the picked packet.
    picked: Option<(std::time::Instant, u16)>,
}

const COLORS: [Color32; 6] = [
    Color32::from_rgb(90, 140, 230),
    Color32::from_rgb(80, 180, 120),
    Color32::from_rgb(220, 160, 60),
    Color32::from_rgb(180, 110, 210),
    Color32::from_rgb(70, 180, 190),
    Color32::from_rgb(200, 120, 120),
];

impl InspectorPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, history: &mut History) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut history.inspector_frozen, "Freeze")
                .on_hover_text("Stop the table to read it; the video goes on.");
            ui.label(
                RichText::new(format!(
                    "{} packets kept (last few seconds)",
                    history.packets.len()
                ))
                .weak(),
            );
        });
        let newest = history.packets.back().copied();
        let picked = self
            .picked
            .and_then(|(at, seq)| {
                history
                    .packets
                    .iter()
                    .rev()
                    .find(|p| p.at == at && p.seq == seq)
            })
            .copied()
            .or(newest);
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("inspector-table")
                .show(&mut cols[0], |ui| self.table(ui, history, picked));
            egui::ScrollArea::vertical()
                .id_salt("inspector-detail")
                .show(&mut cols[1], |ui| match picked {
                    Some(p) => detail(ui, &p, history),
                    None => {
                        ui.label("No packets yet: press SETUP, then PLAY.");
                    }
                });
        });
    }

    fn table(&mut self, ui: &mut egui::Ui, history: &History, picked: Option<PacketRecord>) {
        Grid::new("inspector-rows")
            .num_columns(6)
            .striped(true)
            .spacing([10.0, 2.0])
            .show(ui, |ui| {
                for h in ["ms", "Seq", "M", "Timestamp", "Bytes", "Status"] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for p in history.packets.iter().rev().take(TABLE_ROWS) {
                    let chosen = picked.is_some_and(|c| c.at == p.at && c.seq == p.seq);
                    let r = ui.selectable_label(chosen, format!("{:.1}", history.millis(p.at)));
                    if r.clicked() {
                        self.picked = Some((p.at, p.seq));
                    }
                    ui.label(p.seq.to_string());
                    ui.label(if p.marker { "1" } else { "0" });
                    ui.label(p.timestamp.to_string());
                    ui.label(p.size.to_string());
                    let status = p.status.csv();
                    if matches!(p.status, PacketStatus::Ok) {
                        ui.label(status);
                    } else {
                        ui.colored_label(ui.visuals().warn_fg_color, status);
                    }
                    ui.end_row();
                }
            });
    }
}

fn detail(ui: &mut egui::Ui, p: &PacketRecord, history: &History) {
    let head = p.head();
    ui.label(
        RichText::new(format!(
            "Packet {} at {:.1} ms, {} bytes: {}",
            p.seq,
            history.millis(p.at),
            p.size,
            p.status.csv()
        ))
        .strong(),
    );
    let Some(fields) = rtp_fields(head, p.status) else {
        ui.label(format!(
            "{} bytes: too short for an RTP header (12 bytes). Hex: {}",
            head.len(),
            hex(head)
        ));
        return;
    };
    ui.label(RichText::new("RTP header (RFC 3550), 12 bytes").weak());
    ui.label(RichText::new(hex(&head[..12])).monospace());
    bits(ui, &head[..12], &fields);
    field_table(ui, "rtp-fields", &fields);
    let payload = &head[12..];
    let jpeg = jpeg_fields(payload);
    if jpeg.is_empty() {
        if payload.starts_with(&[0xff, 0xd8]) {
            ui.label("Payload: a whole JPEG (FF D8 ...), as the lab sends it.");
        }
        return;
    }
    let len = jpeg.last().map_or(8, |f| (f.start + f.bits).div_ceil(8));
    ui.add_space(6.0);
    ui.label(RichText::new("RFC 2435 JPEG headers").weak());
    ui.label(RichText::new(hex(&payload[..len.min(payload.len())])).monospace());
    bits(ui, &payload[..len.min(payload.len())], &jpeg);
    field_table(ui, "jpeg-fields", &jpeg);
}

/// A packet header as `check` shows its first offending packet: the
/// inspector's drawing (hex, the bits under their field names, the table
/// of fields) in the window, and this text rendering of the same on the
/// command line. `lab` says the marker should be 0, as the lab sends.
pub fn header_text(head: &[u8], refused: Option<DropReason>, lab: bool) -> String {
    let Some(fields) = header_fields(head, refused).map(|f| lab_marker(f, lab)) else {
        return format!(
            "{} bytes: too short for an RTP header (12 bytes). Hex: {}\n",
            head.len(),
            hex(head)
        );
    };
    let mut out = format!("RTP header (RFC 3550), 12 bytes: {}\n", hex(&head[..12]));
    // The bits in rows of 32, `|` between fields, names underneath.
    for row in 0..3 {
        let (mut bits, mut names) = (String::new(), String::new());
        for f in fields.iter().filter(|f| f.start / 32 == row) {
            let value: String = (f.start..f.start + f.bits)
                .map(|b| {
                    if (head[b / 8] >> (7 - b % 8)) & 1 == 1 {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            let width = value.len().max(f.name.len().min(16)) + 1;
            bits.push_str(&format!("{value:<width$}"));
            let name = if f.refused {
                format!("{}!", f.name)
            } else {
                f.name.to_string()
            };
            names.push_str(&format!("{name:<width$}"));
        }
        out.push_str(&format!(
            "  bits {:>2}-{:<2}  {}\n",
            row * 32,
            row * 32 + 31,
            bits.trim_end()
        ));
        out.push_str(&format!("              {}\n", names.trim_end()));
    }
    for f in &fields {
        let value = if f.bits >= 16 {
            format!("0x{:0w$X} ({})", f.value, f.value, w = f.bits / 4)
        } else {
            format!("{}", f.value)
        };
        out.push_str(&format!(
            "  {} {:<16} bits {:<6} {:<22} should be {}\n",
            if f.refused { ">" } else { " " },
            f.name,
            format!("{}-{}", f.start, f.start + f.bits - 1),
            value,
            f.expected
        ));
    }
    out
}

/// The same header drawn as the inspector draws a picked packet.
pub fn header_ui(ui: &mut egui::Ui, id: &str, head: &[u8], refused: Option<DropReason>, lab: bool) {
    let Some(fields) = header_fields(head, refused).map(|f| lab_marker(f, lab)) else {
        ui.label(format!(
            "{} bytes: too short for an RTP header (12 bytes). Hex: {}",
            head.len(),
            hex(head)
        ));
        return;
    };
    ui.label(RichText::new(hex(&head[..12])).monospace());
    bits(ui, &head[..12], &fields);
    field_table(ui, id, &fields);
}

/// The lab sends one whole frame per packet with M=0 (its handout), where
/// RFC 3550 would set it on a frame's last packet, and stamps it with the
/// clock in seconds, not once per frame.
fn lab_marker(mut fields: Vec<Field>, lab: bool) -> Vec<Field> {
    if !lab {
        return fields;
    }
    for f in &mut fields {
        match f.name {
            "M" => f.expected = "0 (the lab handout)".into(),
            // Python's time(): whole seconds, shared by 20 frames.
            "Timestamp" => f.expected = "never going back (Python's time)".into(),
            _ => {}
        }
    }
    fields
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bits in rows of 32, as RFC 3550 draws the header, each field
/// coloured and named under its bits; a refused field in red.
fn bits(ui: &mut egui::Ui, bytes: &[u8], fields: &[Field]) {
    let rows = bytes.len().div_ceil(4);
    let cell = ((ui.available_width() - 8.0) / 32.0).clamp(9.0, 18.0);
    let row_h = cell + 16.0;
    let (rect, _) = ui.allocate_exact_size(vec2(cell * 32.0, row_h * rows as f32), Sense::hover());
    let painter = ui.painter_at(rect);
    let text = ui.visuals().text_color();
    let refused = ui.visuals().error_fg_color;
    let font = FontId::monospace(cell * 0.7);
    let small = FontId::proportional(10.0);
    for (i, field) in fields.iter().enumerate() {
        let color = if field.refused {
            refused
        } else {
            COLORS[i % COLORS.len()]
        };
        let mut bit = field.start;
        let end = field.start + field.bits;
        while bit < end && bit / 8 < bytes.len() {
            // One segment per row the field spans.
            let row = bit / 32;
            let seg_end = end.min((row + 1) * 32);
            let x0 = rect.left() + (bit % 32) as f32 * cell;
            let x1 = rect.left() + ((seg_end - 1) % 32 + 1) as f32 * cell;
            let y = rect.top() + row as f32 * row_h;
            let r = egui::Rect::from_min_max(egui::pos2(x0, y), egui::pos2(x1, y + cell));
            painter.rect_filled(r, 2.0, color.gamma_multiply(0.35));
            painter.rect_stroke(r, 2.0, Stroke::new(1.0, color), StrokeKind::Inside);
            for b in bit..seg_end {
                let v = (bytes[b / 8] >> (7 - b % 8)) & 1;
                let c = egui::pos2(
                    rect.left() + (b % 32) as f32 * cell + cell / 2.0,
                    y + cell / 2.0,
                );
                painter.text(
                    c,
                    egui::Align2::CENTER_CENTER,
                    v.to_string(),
                    font.clone(),
                    text,
                );
            }
            painter.text(
                egui::pos2((x0 + x1) / 2.0, y + cell + 1.0),
                egui::Align2::CENTER_TOP,
                field.name,
                small.clone(),
                color,
            );
            bit = seg_end;
        }
    }
}

fn field_table(ui: &mut egui::Ui, id: &str, fields: &[Field]) {
    Grid::new(id)
        .num_columns(4)
        .striped(true)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            for h in ["Field", "Bits", "Value", "Should be"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for f in fields {
                let bits = format!("{}-{}", f.start, f.start + f.bits - 1);
                ui.label(format!("{} = {}", f.name, f.value));
                ui.label(bits);
                ui.label(if f.bits >= 16 {
                    format!("0x{:0w$X}", f.value, w = f.bits / 4)
                } else {
                    format!("{:0w$b}", f.value, w = f.bits)
                });
                if f.refused {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("{}: refused here", f.expected),
                    );
                } else {
                    ui.label(&f.expected);
                }
                ui.end_row();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_known_header_and_the_refused_one() {
        // V=2, M=1, PT=26, seq 0x1234, ts 0x01020304, SSRC 0xDEADBEEF.
        let head = [0x80, 0x9a, 0x12, 0x34, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef];
        let f = rtp_fields(&head, PacketStatus::Dropped(DropReason::Ssrc)).unwrap();
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("V").value, 2);
        assert_eq!(get("M").value, 1);
        assert_eq!(get("PT").value, 26);
        assert_eq!(get("Sequence number").value, 0x1234);
        assert_eq!(get("Timestamp").value, 0x0102_0304);
        assert_eq!(get("SSRC").value, 0xdead_beef);
        assert!(get("SSRC").refused);
        assert_eq!(f.iter().filter(|x| x.refused).count(), 1);
        assert!(rtp_fields(&head[..8], PacketStatus::Ok).is_none());
    }

    #[test]
    fn rfc2435_headers_with_restart_and_tables() {
        // Type 65 (4:2:0 + restart), Q 255, 640x480, offset 0.
        let p = [0, 0, 0, 0, 65, 255, 80, 60, 0, 4, 0xff, 0xff, 0, 0, 0, 128];
        let f = jpeg_fields(&p);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(
            (get("Type"), get("Q"), get("Width"), get("Height")),
            (65, 255, 80, 60)
        );
        assert_eq!(get("Restart interval"), 4);
        assert_eq!((get("F"), get("L"), get("Restart count")), (1, 1, 0x3fff));
        assert_eq!(get("Length"), 128);
        assert!(
            jpeg_fields(&[0xff, 0xd8, 0, 0, 0, 0, 0, 0]).is_empty(),
            "a lab JPEG"
        );
    }
}
