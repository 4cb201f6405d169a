//! The program's icon, drawn by code so the window needs no image file:
//! a blue rounded square with a white PLAY triangle and the three state
//! dots (INIT, READY, PLAYING) under it. `assets/streamlab.svg` is the same
//! drawing for the desktop entry.

/// The icon as RGBA pixels, `size` x `size`.
pub fn rgba(size: u32) -> Vec<u8> {
    let s = size as f32;
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    // Sampled 4x4 per pixel, so the edges are smooth.
    const SUB: u32 = 4;
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0.0f32; 4];
            for sy in 0..SUB {
                for sx in 0..SUB {
                    let u = (x as f32 + (sx as f32 + 0.5) / SUB as f32) / s;
                    let v = (y as f32 + (sy as f32 + 0.5) / SUB as f32) / s;
                    let c = sample(u, v);
                    for (a, c) in acc.iter_mut().zip(c) {
                        *a += c;
                    }
                }
            }
            let n = (SUB * SUB) as f32;
            let alpha = acc[3] / n;
            for channel in &acc[..3] {
                // Stored straight (not premultiplied), as IconData wants.
                let value = if alpha > 0.0 {
                    channel / n / alpha
                } else {
                    0.0
                };
                out.push((value * 255.0).round().clamp(0.0, 255.0) as u8);
            }
            out.push((alpha * 255.0).round() as u8);
        }
    }
    out
}

/// The colour at (u, v) in the unit square, premultiplied RGBA 0..1.
fn sample(u: f32, v: f32) -> [f32; 4] {
    // Rounded square, corner radius 0.18 (the SVG's rx="46" of 256).
    if !inside_rounded(u, v, 0.03, 0.97, 0.18) {
        return [0.0; 4];
    }
    // White PLAY triangle: (0.36,0.22) (0.36,0.62) (0.72,0.42).
    if inside_triangle(u, v, (0.36, 0.22), (0.36, 0.62), (0.72, 0.42)) {
        return [1.0, 1.0, 1.0, 1.0];
    }
    // INIT, READY, PLAYING dots.
    for (cx, color) in [
        (0.30, [0.80, 0.84, 0.90]),
        (0.50, [0.98, 0.78, 0.25]),
        (0.70, [0.35, 0.80, 0.45]),
    ] {
        if (u - cx).powi(2) + (v - 0.80).powi(2) <= 0.065f32.powi(2) {
            return [color[0], color[1], color[2], 1.0];
        }
    }
    // Blue, a little lighter at the top.
    let t = v;
    [
        0.16 + 0.06 * (1.0 - t),
        0.36 + 0.10 * (1.0 - t),
        0.66 + 0.10 * (1.0 - t),
        1.0,
    ]
}

fn inside_rounded(u: f32, v: f32, lo: f32, hi: f32, r: f32) -> bool {
    if u < lo || u > hi || v < lo || v > hi {
        return false;
    }
    let cx = u.clamp(lo + r, hi - r);
    let cy = v.clamp(lo + r, hi - r);
    (u - cx).powi(2) + (v - cy).powi(2) <= r * r
}

fn inside_triangle(u: f32, v: f32, a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> bool {
    let side = |p: (f32, f32), q: (f32, f32)| (q.0 - p.0) * (v - p.1) - (q.1 - p.1) * (u - p.0);
    let (d1, d2, d3) = (side(a, b), side(b, c), side(c, a));
    let neg = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
    let pos = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
    !(neg && pos)
}

/// The icon for the window.
pub fn icon_data() -> egui::IconData {
    const SIZE: u32 = 128;
    egui::IconData {
        rgba: rgba(SIZE),
        width: SIZE,
        height: SIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_are_clear_and_the_triangle_is_white() {
        let size = 64;
        let px = rgba(size);
        let at = |x: u32, y: u32| {
            let i = ((y * size + x) * 4) as usize;
            [px[i], px[i + 1], px[i + 2], px[i + 3]]
        };
        assert_eq!(at(0, 0)[3], 0, "transparent corner");
        assert_eq!(at(32, 8)[3], 255, "opaque body");
        assert_eq!(at(30, 27), [255, 255, 255, 255], "triangle");
    }
}
