//! What DESCRIBE, SETUP and PLAY replies teach the client: the JPEG track
//! and its payload type, the stream's length and clock (the timeline), where
//! the last PLAY started (Range and RTP-Info), and where RTCP goes.

use std::time::Instant;

use super::{ClientConnection, ClientError, ClientHost, Event, Step};
use crate::protocol::rtsp::{Method, Response};
use crate::protocol::sdp;
use crate::protocol::timeline::{self, Anchor, Timeline};
use crate::protocol::transport::Transport;

impl ClientConnection {
    /// The standard SETUP sequence cannot go on: say why, and leave no
    /// session or media behind.
    pub(super) fn abandon_setup(&mut self, e: ClientError, host: &mut impl ClientHost) {
        host.event(Event::Error(e));
        self.step = None;
        self.session = None;
        self.close_media(host);
    }

    /// DESCRIBE answered: find the MJPEG track and SETUP it.
    pub(super) fn described(&mut self, now: Instant, resp: &Response, host: &mut impl ClientHost) {
        let description = match sdp::parse(&resp.body) {
            Ok(d) => d,
            Err(e) => {
                let e = ClientError::Other(format!("the stream's description: {e}"));
                return self.abandon_setup(e, host);
            }
        };
        let video: Vec<&sdp::Media> = description
            .media
            .iter()
            .filter(|m| m.kind == "video")
            .collect();
        let Some((media, pt)) = video
            .iter()
            .find_map(|m| m.jpeg_payload_type().map(|pt| (*m, pt)))
        else {
            let codec = video
                .first()
                .and_then(|m| m.formats.first().and_then(|&pt| m.encoding(pt)))
                .unwrap_or_else(|| "no video".to_string());
            return self.abandon_setup(ClientError::NotJpeg { codec }, host);
        };
        self.info.payload_type = pt;
        self.info.dimensions = media.dimensions;
        host.stream_info(self.info);
        let clock_rate = media
            .encodings
            .iter()
            .find(|(p, _, clock)| *p == pt && *clock > 0)
            .map_or(timeline::DEFAULT_CLOCK_RATE, |(_, _, clock)| *clock);
        self.set_timeline(
            Timeline {
                length_ms: description.range.as_deref().and_then(timeline::length_ms),
                clock_rate,
                frame_ms: media.framerate.and_then(timeline::frame_ms),
                anchor: None,
            },
            host,
        );
        // These URLs go into our request lines as one word: an empty one,
        // or one with spaces or control characters, would make the
        // request unreadable, so the URL we know stands in for it.
        let usable = |url: &str| {
            !url.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        let base = resp
            .headers
            .get("Content-Base")
            .or_else(|| resp.headers.get("Content-Location"))
            .filter(|url| usable(url))
            .map(str::to_string)
            .unwrap_or_else(|| self.base_url.clone());
        let join = |control: Option<&str>| {
            let url = sdp::join_control(&base, control.unwrap_or("*"));
            if usable(&url) { url } else { base.clone() }
        };
        let track = join(media.control.as_deref());
        self.base_url = join(description.session_control.as_deref());
        self.track_url = Some(track.clone());
        self.step = Some(Step::Setup);
        self.send_request(now, Method::Setup, track, None, host);
    }

    /// PLAY answered: where it started (the reply's Range, else the one
    /// asked for) and the RTP timestamp of its first frame (RTP-Info).
    pub(super) fn anchor_play(&mut self, resp: &Response, host: &mut impl ClientHost) {
        if !self.standard() {
            return;
        }
        let start_of = |range: Option<&str>| {
            range
                .and_then(timeline::npt_range)
                .and_then(|(start, _)| start)
        };
        let asked = self.last_request.as_ref().and_then(|s| s.range.as_deref());
        let start = start_of(resp.headers.get("Range")).or_else(|| start_of(asked));
        let rtptime = resp
            .headers
            .get("RTP-Info")
            .and_then(|v| timeline::rtp_info_rtptime(v, self.track_url.as_deref()));
        let anchor = match start {
            Some(s) => Some(Anchor {
                start_ms: timeline::millis(s),
                rtptime,
            }),
            // Resumed, and the server did not say where: the old mapping
            // holds as long as its timestamps ran on.
            None => self.timeline.anchor,
        };
        let timeline = Timeline {
            anchor,
            ..self.timeline
        };
        self.set_timeline(timeline, host);
    }

    pub(super) fn set_timeline(&mut self, timeline: Timeline, host: &mut impl ClientHost) {
        self.timeline = timeline;
        host.event(Event::Timeline(timeline));
    }

    /// Read where RTCP goes from SETUP's reply.
    pub(super) fn learn_transport(&mut self, resp: &Response, host: &mut impl ClientHost) {
        let Some(t) = resp
            .headers
            .get("Transport")
            .and_then(|v| Transport::parse_all(v).into_iter().find_map(Result::ok))
        else {
            return;
        };
        self.info.server_rtcp_port = t
            .server_port
            .map(|(rtp, rtcp)| rtcp.unwrap_or(rtp.wrapping_add(1)));
        if let Some((rtp, rtcp)) = t.interleaved {
            self.info.rtp_channel = rtp;
            self.info.rtcp_channel = rtcp.or(rtp.checked_add(1));
        }
        host.stream_info(self.info);
    }
}
