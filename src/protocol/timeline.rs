//! Where a stream is in time, for a position bar: the length DESCRIBE
//! gives (`a=range:npt=0-LEN`), and how RTP timestamps map to normal play
//! time since the last PLAY (its reply's `Range: npt=S-` and the `rtptime`
//! of `RTP-Info`, RFC 2326 §12.29 and §12.33).
//!
//! A frame's position is `S + (timestamp - rtptime) / clock rate`: read
//! from what the server sent, never from the time frames took to arrive.

/// The RTP clock of video when the description names none (RFC 2435).
pub const DEFAULT_CLOCK_RATE: u32 = 90_000;

/// What the client knows about the stream's time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The presentation's length in milliseconds, when the description
    /// gave a finite range; None for live streams (`npt=0-`, `npt=now-`)
    /// and for the lab's dialect, which has no DESCRIBE.
    pub length_ms: Option<u64>,
    /// The RTP clock rate of the video track (from `a=rtpmap`).
    pub clock_rate: u32,
    /// How long one frame lasts, from `a=framerate`, when given.
    pub frame_ms: Option<u32>,
    /// Where the last PLAY started, from its reply.
    pub anchor: Option<Anchor>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            length_ms: None,
            clock_rate: DEFAULT_CLOCK_RATE,
            frame_ms: None,
            anchor: None,
        }
    }
}

/// Where a PLAY started: a point in normal play time and the RTP
/// timestamp the server gave the first frame sent from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub start_ms: u64,
    /// None when the reply had no `RTP-Info` with `rtptime`: the first
    /// frame that arrives after it is then taken to be at `start_ms`.
    pub rtptime: Option<u32>,
}

impl Timeline {
    /// Whether a position bar makes sense: the stream has a known length.
    pub fn seekable(&self) -> bool {
        self.length_ms.is_some_and(|l| l > 0)
    }

    /// The latest point a seek can ask for: the start of the last frame
    /// (one second before the end when the frame rate is not known). A
    /// PLAY from the very end would be refused (457).
    pub fn last_seek_ms(&self) -> u64 {
        let length = self.length_ms.unwrap_or(0);
        length.saturating_sub(self.frame_ms.map_or(1000, u64::from))
    }

    /// The position, in milliseconds, of the frame with RTP timestamp
    /// `timestamp`. None without an anchor with an `rtptime`, or for a
    /// frame sent before the last PLAY (its timestamp is behind `rtptime`;
    /// it was on its way when the seek happened).
    ///
    /// A server that loops its file (Streamlab's own, in the window) keeps
    /// its timestamps running across the wrap: past the end, the position
    /// starts again from 0.
    pub fn position_ms(&self, timestamp: u32) -> Option<u64> {
        let anchor = self.anchor?;
        let elapsed = timestamp.wrapping_sub(anchor.rtptime?) as i32;
        if elapsed < 0 {
            return None;
        }
        let elapsed_ms = elapsed as u64 * 1000 / self.clock_rate.max(1) as u64;
        let position = anchor.start_ms + elapsed_ms;
        Some(match self.length_ms {
            Some(length) if length > 0 && position >= length => position % length,
            _ => position,
        })
    }
}

/// A normal play time range, `npt=START-[END]`: its start (None for
/// `now` or an empty start) and end (None when open), in seconds; None
/// when the value is not npt.
pub fn npt_range(value: &str) -> Option<(Option<f64>, Option<f64>)> {
    let v = value.split(';').next()?.trim();
    let npt = v
        .strip_prefix("npt")?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let (start, end) = npt.split_once('-')?;
    let time = |t: &str| -> Option<Option<f64>> {
        let t = t.trim();
        if t.is_empty() || t == "now" {
            return Some(None);
        }
        npt_time(t).map(Some)
    };
    Some((time(start)?, time(end)?))
}

/// One npt time: seconds (`12.5`) or `h:mm:ss[.frac]`; None for what is
/// not one (or is negative or not finite).
pub fn npt_time(t: &str) -> Option<f64> {
    let secs = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        let [h, m, s] = parts.as_slice() else {
            return None;
        };
        h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?
    } else {
        t.parse().ok()?
    };
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

/// The length of a presentation from the description's `a=range`, in
/// milliseconds: only a range with a finite end after its start.
pub fn length_ms(range: &str) -> Option<u64> {
    let (start, end) = npt_range(range)?;
    let end = end?;
    (end > start.unwrap_or(0.0)).then(|| (end * 1000.0).round() as u64)
}

/// How long a frame lasts at `fps` frames per second, in whole
/// milliseconds (rounded down, so that a seek to the last frame stays on it).
pub fn frame_ms(fps: f64) -> Option<u32> {
    (fps.is_finite() && fps > 0.0).then(|| (1000.0 / fps).floor() as u32)
}

/// Seconds to whole milliseconds.
pub fn millis(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

/// The `rtptime` of an `RTP-Info` header for the track set up at
/// `track_url`: the entry whose `url` names the track, or the only one,
/// or the first (a wrong URL with one stream is common, RFC 2326 §14.3).
pub fn rtp_info_rtptime(value: &str, track_url: Option<&str>) -> Option<u32> {
    let entries: Vec<Vec<(&str, &str)>> = value
        .split(',')
        .map(|entry| {
            entry
                .split(';')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect()
        })
        .collect();
    let param = |entry: &[(&str, &str)], name: &str| {
        entry
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
    };
    let names_track = |entry: &&Vec<(&str, &str)>| {
        let (Some(url), Some(track)) = (param(entry, "url"), track_url) else {
            return false;
        };
        !url.is_empty() && (url == track || track.ends_with(&format!("/{url}")))
    };
    let entry = entries
        .iter()
        .find(names_track)
        .or_else(|| entries.first())?;
    param(entry, "rtptime")?.parse().ok()
}

/// A Range header that is not a normal play time we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an npt range")]
pub struct BadRange;

/// The start of a `Range: npt=START-[END]` header: None for `now` or an
/// empty start, Err for what is not npt.
pub fn parse_npt_start(value: &str) -> Result<Option<f64>, BadRange> {
    let v = value.split(';').next().unwrap_or("").trim();
    let Some(npt) = v.strip_prefix("npt=").or_else(|| v.strip_prefix("npt =")) else {
        return Err(BadRange);
    };
    let start = npt.split('-').next().unwrap_or("").trim();
    if start.is_empty() || start == "now" {
        return Ok(None);
    }
    npt_time(start).map(Some).ok_or(BadRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored(start_ms: u64, rtptime: u32, length_ms: Option<u64>) -> Timeline {
        Timeline {
            length_ms,
            anchor: Some(Anchor {
                start_ms,
                rtptime: Some(rtptime),
            }),
            ..Timeline::default()
        }
    }

    #[test]
    fn position_counts_from_the_anchor() {
        let t = anchored(5_000, 1_000, Some(10_000));
        assert_eq!(t.position_ms(1_000), Some(5_000));
        assert_eq!(t.position_ms(1_000 + 4_500), Some(5_050));
        assert_eq!(t.position_ms(1_000 + 90_000), Some(6_000));
    }

    #[test]
    fn position_across_the_timestamp_wrap() {
        let t = anchored(0, u32::MAX - 8_999, None);
        assert_eq!(t.position_ms(u32::MAX - 8_999), Some(0));
        assert_eq!(t.position_ms(81_000), Some(1_000));
    }

    #[test]
    fn a_frame_from_before_the_seek_has_no_position() {
        let t = anchored(8_000, 500_000, Some(10_000));
        assert_eq!(t.position_ms(500_000 - 4_500), None);
    }

    #[test]
    fn a_looping_server_starts_again_at_zero() {
        let t = anchored(9_000, 0, Some(10_000));
        assert_eq!(t.position_ms(90_000), Some(0));
        assert_eq!(t.position_ms(90_000 + 45_000), Some(500));
    }

    #[test]
    fn no_position_without_rtptime() {
        let mut t = anchored(0, 0, Some(10_000));
        t.anchor = Some(Anchor {
            start_ms: 0,
            rtptime: None,
        });
        assert_eq!(t.position_ms(0), None);
        assert_eq!(Timeline::default().position_ms(0), None);
    }

    #[test]
    fn the_last_seek_is_the_last_frame() {
        let mut t = anchored(0, 0, Some(10_000));
        t.frame_ms = frame_ms(20.0);
        assert_eq!(t.last_seek_ms(), 9_950);
        t.frame_ms = frame_ms(30.0);
        assert_eq!(t.frame_ms, Some(33));
        // 9.967 s at 30 fps is frame 299.01: the last of 300.
        assert_eq!(t.last_seek_ms(), 9_967);
        t.frame_ms = None;
        assert_eq!(t.last_seek_ms(), 9_000);
        assert_eq!(frame_ms(0.0), None);
    }

    #[test]
    fn only_a_finite_range_has_a_length() {
        assert_eq!(length_ms("npt=0-25.000"), Some(25_000));
        assert_eq!(length_ms("npt=0-0:01:02.5"), Some(62_500));
        assert_eq!(length_ms("npt = 0-10"), Some(10_000));
        // What live sources and cameras say (tests/fixtures, shared/fixtures/cameras).
        for live in [
            "npt=0-",
            "npt=now-",
            "npt=0.000000-",
            "clock=19961108T142300Z-",
            "",
        ] {
            assert_eq!(length_ms(live), None, "{live:?}");
        }
        assert_eq!(length_ms("npt=5-5"), None, "empty");
    }

    #[test]
    fn npt_ranges_of_play_replies() {
        assert_eq!(
            npt_range("npt=10.500-25.000"),
            Some((Some(10.5), Some(25.0)))
        );
        assert_eq!(npt_range("npt=0.000-"), Some((Some(0.0), None)));
        assert_eq!(npt_range("npt=now-"), Some((None, None)));
        assert_eq!(npt_range("npt=abc-"), None);
        assert_eq!(npt_range("smpte=0:10:20-"), None);
    }

    #[test]
    fn rtptime_of_the_track_that_was_set_up() {
        // Our server, gst-rtsp-server, and a camera with three tracks.
        assert_eq!(
            rtp_info_rtptime(
                "url=rtsp://h/movie.Mjpeg/trackID=0;seq=100;rtptime=9000",
                Some("rtsp://h/movie.Mjpeg/trackID=0")
            ),
            Some(9000)
        );
        assert_eq!(
            rtp_info_rtptime(
                "url=rtsp://127.0.0.1:38571/test/stream=0;seq=8472;rtptime=4089151264",
                Some("rtsp://10.0.0.1/test/stream=0")
            ),
            Some(4_089_151_264),
            "one stream: its URL need not match"
        );
        let three = "url=trackID=0;seq=47121;rtptime=3475222385,url=trackID=1;seq=45186;rtptime=2234446919,url=trackID=4;seq=36583;rtptime=816418535";
        assert_eq!(
            rtp_info_rtptime(three, Some("rtsp://cam/live/trackID=1")),
            Some(2_234_446_919)
        );
        assert_eq!(rtp_info_rtptime(three, None), Some(3_475_222_385));
        assert_eq!(rtp_info_rtptime("url=rtsp://127.0.0.1:554/", None), None);
    }
}
