//! The checks `streamlab check` runs, by id, and the handout text each one
//! stands on. The ids are a public interface (`--json` prints them, the
//! issue and the README name them), so they never change once released.
//!
//! Two handouts are quoted: "the lab handout" is the classic *Video
//! Streaming with RTSP and RTP* text (shared/seeds/002), "the TPC-3
//! handout" the Lisbon variant (shared/seeds/000). A check's message quotes
//! the one that asks for it, so a student sees why it matters.

use std::fmt;

/// Which protocol the checked program speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckDialect {
    /// The lab's RTSP (bare LF, file name as target, `RTP/UDP`).
    #[default]
    Lab,
    /// The TPC-3 handshake: file name and port, session id or -1, `Go`.
    Tpc3,
    /// RFC 2326 RTSP with RTP/AVP (RFC 2435 payloads).
    Standard,
}

impl CheckDialect {
    pub fn name(self) -> &'static str {
        match self {
            CheckDialect::Lab => "lab",
            CheckDialect::Tpc3 => "tpc3",
            CheckDialect::Standard => "standard",
        }
    }
}

/// Every check, client side and server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    // Server: RTSP replies.
    RtspStatusLine,
    RtspCseq,
    RtspSession,
    RtspNotFound,
    RtspLineOrder,
    // Server: every RTP packet.
    RtpVersion,
    RtpPadding,
    RtpExtension,
    RtpCc,
    RtpMarker,
    RtpPayloadType,
    RtpSequence,
    RtpTimestamp,
    RtpSsrc,
    RtpPayload,
    RtpDestination,
    // Server: behaviour.
    PlayStarts,
    RtpRate,
    PauseStops,
    PlayResumes,
    TeardownStops,
    // Server: TPC-3.
    Tpc3SessionId,
    Tpc3MissingFile,
    Tpc3Go,
    // Client.
    ReqLine,
    ReqCseq,
    ReqTransport,
    ReqNoTransport,
    ReqSession,
    ReqState,
    RtpPortOpen,
    ClientTeardown,
    Tpc3Request,
}

impl CheckId {
    /// The id as `--json` prints it.
    pub fn as_str(self) -> &'static str {
        use CheckId::*;
        match self {
            RtspStatusLine => "rtsp.status_line",
            RtspCseq => "rtsp.cseq",
            RtspSession => "rtsp.session",
            RtspNotFound => "rtsp.not_found",
            RtspLineOrder => "rtsp.line_order",
            RtpVersion => "rtp.version",
            RtpPadding => "rtp.padding",
            RtpExtension => "rtp.extension",
            RtpCc => "rtp.cc",
            RtpMarker => "rtp.marker",
            RtpPayloadType => "rtp.payload_type",
            RtpSequence => "rtp.sequence",
            RtpTimestamp => "rtp.timestamp",
            RtpSsrc => "rtp.ssrc",
            RtpPayload => "rtp.payload",
            RtpDestination => "rtp.destination",
            PlayStarts => "play.starts",
            RtpRate => "rtp.rate",
            PauseStops => "pause.stops",
            PlayResumes => "play.resumes",
            TeardownStops => "teardown.stops",
            Tpc3SessionId => "tpc3.session_id",
            Tpc3MissingFile => "tpc3.missing_file",
            Tpc3Go => "tpc3.go",
            ReqLine => "req.line",
            ReqCseq => "req.cseq",
            ReqTransport => "req.transport",
            ReqNoTransport => "req.no_transport",
            ReqSession => "req.session",
            ReqState => "req.state",
            RtpPortOpen => "rtp.port_open",
            ClientTeardown => "client.teardown",
            Tpc3Request => "tpc3.request",
        }
    }

    /// The RTP receiver's name for the field this check is about, so the
    /// inspector's drawing can mark it.
    pub fn drop_reason(self) -> Option<crate::protocol::rtp::DropReason> {
        use crate::protocol::rtp::DropReason as D;
        use CheckId::*;
        Some(match self {
            RtpVersion => D::Version,
            RtpPadding => D::Padding,
            RtpExtension => D::Extension,
            RtpCc => D::CsrcCount,
            RtpMarker => D::Marker,
            RtpPayloadType => D::PayloadType,
            RtpSequence => D::Sequence,
            RtpTimestamp => D::Timestamp,
            RtpSsrc => D::Ssrc,
            _ => return None,
        })
    }

    /// The checks `check server` runs in `dialect`, in the order printed.
    pub fn server_checks(dialect: CheckDialect) -> Vec<CheckId> {
        use CheckId::*;
        let rtp = [
            RtpVersion,
            RtpPadding,
            RtpExtension,
            RtpCc,
            RtpMarker,
            RtpPayloadType,
            RtpSequence,
            RtpTimestamp,
            RtpSsrc,
            RtpPayload,
            RtpDestination,
        ];
        match dialect {
            CheckDialect::Lab | CheckDialect::Standard => {
                let mut v = vec![RtspStatusLine, RtspCseq, RtspSession, RtspNotFound];
                // Standard clients read headers by name: line order is a
                // lab-only rule.
                if dialect == CheckDialect::Lab {
                    v.push(RtspLineOrder);
                }
                v.extend(rtp);
                v.extend([PlayStarts, RtpRate, PauseStops, PlayResumes, TeardownStops]);
                v
            }
            CheckDialect::Tpc3 => {
                let mut v = vec![Tpc3SessionId, Tpc3MissingFile, Tpc3Go];
                v.extend(rtp);
                v.extend([PlayStarts, RtpRate]);
                v
            }
        }
    }

    /// The checks `check client` runs in `dialect`, in the order printed.
    pub fn client_checks(dialect: CheckDialect) -> Vec<CheckId> {
        use CheckId::*;
        match dialect {
            CheckDialect::Tpc3 => vec![Tpc3Request, Tpc3Go, RtpPortOpen],
            _ => vec![
                ReqLine,
                ReqCseq,
                ReqTransport,
                ReqNoTransport,
                ReqSession,
                ReqState,
                RtpPortOpen,
                ClientTeardown,
            ],
        }
    }

    /// What the check asks for, in a few words, and the handout's own
    /// words for it (quoted or closely paraphrased), naming the handout.
    pub fn expected(self, dialect: CheckDialect) -> String {
        let (want, handout, words) = self.rule(dialect);
        format!("{want} ({handout}: {words})")
    }

    fn rule(self, dialect: CheckDialect) -> (&'static str, Handout, &'static str) {
        use CheckId::*;
        use Handout::*;
        let tpc3 = dialect == CheckDialect::Tpc3;
        let std = dialect == CheckDialect::Standard;
        match self {
            RtspStatusLine => (
                "`RTSP/1.0 200 OK` as the first line of each reply",
                Lab,
                "\"The code 200 means that the request was successful\"; the example reply starts \"S: RTSP/1.0 200 OK\"",
            ),
            RtspCseq => (
                "the request's CSeq echoed in its reply",
                Lab,
                "in the sample interaction each reply's CSeq is the request's (\"C: CSeq: 2\" ... \"S: CSeq: 2\")",
            ),
            RtspSession => (
                "a Session header in every reply, the same id each time",
                Lab,
                "the client must \"parse the Session header (from the response) to get the RTSP session ID\" and use it in every later request",
            ),
            RtspNotFound => (
                "404 for a file the server does not have",
                Lab,
                "\"the codes 404 and 500 represent FILE_NOT_FOUND error and connection error\"",
            ),
            RtspLineOrder => (
                "status line, then CSeq, then Session",
                Lab,
                "\"both the client and the server do not use sophisticated parsing methods, and they expect the header fields to be in the order you see below\"",
            ),
            RtpVersion if tpc3 => ("V=2 (bits 0-1)", Tpc3, "\"RTP-Version 2\""),
            RtpVersion => (
                "V=2 (bits 0-1)",
                Lab,
                "\"Set the RTP-version field (V). You must set this to 2.\"",
            ),
            RtpPadding | RtpExtension | RtpCc if tpc3 => (
                match self {
                    RtpPadding => "P=0 (bit 2)",
                    RtpExtension => "X=0 (bit 3)",
                    _ => "CC=0 (bits 4-7)",
                },
                Tpc3,
                "the header table: \"Padding(P) 0, extension(X) 0, number of contributing sources (CC) 0\"",
            ),
            RtpPadding | RtpExtension | RtpCc => (
                match self {
                    RtpPadding => "P=0 (bit 2)",
                    RtpExtension => "X=0 (bit 3)",
                    _ => "CC=0 (bits 4-7)",
                },
                Lab,
                "\"Set padding (P), extension (X), number of contributing sources (CC), and marker (M) fields. These are all set to zero in this lab.\"",
            ),
            RtpMarker if std => (
                "M=1 on the last packet of each frame, 0 on the others (bit 8)",
                Rfc,
                "RFC 2435: \"the RTP marker bit MUST be set in the last packet of a frame\"",
            ),
            RtpMarker if tpc3 => ("M=0 (bit 8)", Tpc3, "the header table: \"marker(M) 0\""),
            RtpMarker => (
                "M=0 (bit 8)",
                Lab,
                "\"Set padding (P), extension (X), number of contributing sources (CC), and marker (M) fields. These are all set to zero in this lab.\"",
            ),
            RtpPayloadType if tpc3 => (
                "PT=26 (bits 9-15)",
                Tpc3,
                "\"Payload type (PT) 26 (MJPEG)\"",
            ),
            RtpPayloadType => (
                "PT=26 (bits 9-15)",
                Lab,
                "\"In this lab we use MJPEG and the type for that is 26.\"",
            ),
            RtpSequence if std => (
                "+1 per packet, from any start (bits 16-31)",
                Rfc,
                "RFC 3550: \"The sequence number increments by one for each RTP data packet sent\"",
            ),
            RtpSequence if tpc3 => (
                "from 1, +1 per frame (bits 16-31)",
                Tpc3,
                "\"Sequence number: Starts at 1 and is incremented each time an image is sent\"",
            ),
            RtpSequence => (
                "the frame number: from 1, +1 per frame (bits 16-31)",
                Lab,
                "\"Set the sequence number. The server gives this the sequence number as the frameNbr argument to the encode function.\"",
            ),
            RtpTimestamp if std => (
                "a 90 kHz clock that never goes back (bits 32-63)",
                Rfc,
                "RFC 2435: \"The RTP timestamp is in units of 90000Hz\"",
            ),
            RtpTimestamp if tpc3 => (
                "a clock time that never goes back (bits 32-63)",
                Tpc3,
                "\"Timestamp: Use time stamp of Python's time module\"; the client checks \"If the Timestamp is reasonable\"",
            ),
            RtpTimestamp => (
                "a clock time that never goes back (bits 32-63)",
                Lab,
                "\"Set the timestamp using Python's time module.\"",
            ),
            RtpSsrc if tpc3 => (
                "the session id, in every packet (bits 64-95)",
                Tpc3,
                "\"SSRC Identifier: The SessionID obtained in Setup phase should be inserted here\"",
            ),
            RtpSsrc => (
                "one value, the same in every packet (bits 64-95)",
                Lab,
                "\"Set the source identifier (SSRC). This field identifies the server. You can pick any integer value you like.\"",
            ),
            RtpPayload if std => (
                "an RFC 2435 JPEG header then scan data",
                Rfc,
                "RFC 2435 section 3.1: every packet starts with the 8-byte JPEG header",
            ),
            RtpPayload if tpc3 => (
                "one whole JPEG per datagram (FF D8 ... FF D9) that decodes",
                Tpc3,
                "\"Each UDP datagram contains: A RTP Header ... A JPEG file\"",
            ),
            RtpPayload => (
                "one whole JPEG per packet (FF D8 ... FF D9) that decodes",
                Lab,
                "\"copy the payload (i.e., one video frame) into the packet\"",
            ),
            RtpDestination if tpc3 => (
                "RTP sent to the UDP port the client named",
                Tpc3,
                "\"UDPDataPort is the UDP port where the client will receive the datagrams containing the video\"",
            ),
            RtpDestination => (
                "RTP sent to the port the client named in SETUP",
                Lab,
                "\"RTP_port is the port where the RTP packets are received\"",
            ),
            PlayStarts if tpc3 => (
                "the first datagram within 1 s of Go",
                Tpc3,
                "the client's \"Go\" is \"authorizing the server to start the sending of the movie\"",
            ),
            PlayStarts => (
                "the first packet within 1 s of PLAY",
                Lab,
                "\"The client sends PLAY. This command starts the playback.\"",
            ),
            RtpRate if tpc3 => (
                "20 frames per second (18 to 22), no drift",
                Tpc3,
                "\"The datagrams are sent at rate of 20 datagrams per second.\"",
            ),
            RtpRate => (
                "20 frames per second (18 to 22), no drift",
                Lab,
                "the server \"sends the frame to the client over UDP every 50 milliseconds\"",
            ),
            PauseStops => (
                "nothing after PAUSE beyond one frame already on its way",
                Lab,
                "\"The client may send PAUSE if it wants to pause during playback.\"",
            ),
            PlayResumes => (
                "PLAY after PAUSE goes on at the next frame, not from the start",
                Lab,
                "PAUSE pauses playback and PLAY \"starts the playback\" again; the server reads \"one video frame from the file\" after another",
            ),
            TeardownStops => (
                "nothing after TEARDOWN beyond one frame already on its way",
                Lab,
                "\"The client sends TEARDOWN. This command terminates the session and closes the connection.\"",
            ),
            Tpc3SessionId => (
                "a random number as the session id, for a file the server has",
                Tpc3,
                "\"If the sender has the file, it will answer with a message with a SessionID that is a random number\"",
            ),
            Tpc3MissingFile => (
                "-1 for a file the server does not have",
                Tpc3,
                "\"otherwise it will reply with a SessionId of -1\"",
            ),
            Tpc3Go => (
                "nothing sent before Go; Go sent by the client after the session id",
                Tpc3,
                "\"Client replies with a message containing the string \"Go\" authorizing the server to start the sending of the movie\"",
            ),
            ReqLine => (
                "`METHOD FILE RTSP/1.0` as the first line",
                Lab,
                "the sample interaction: \"C: SETUP movie.Mjpeg RTSP/1.0\"",
            ),
            ReqCseq => (
                "a CSeq in every request, from 1, +1 per request",
                Lab,
                "\"You must insert the CSeq header in every request you send. The value of the CSeq header is a number which starts at 1 and is incremented by one for each request you send.\"",
            ),
            ReqTransport => (
                "SETUP names `Transport: RTP/UDP; client_port= N`",
                Lab,
                "\"You will need to insert the Transport header in which you specify the port for the RTP data socket you just created.\"",
            ),
            ReqNoTransport => (
                "no Transport on PLAY, PAUSE, TEARDOWN",
                Lab,
                "\"You must not put the Transport header in this request.\"",
            ),
            ReqSession => (
                "the session id given at SETUP, on every later request",
                Lab,
                "\"You must insert the Session header and use the session ID returned in the SETUP response.\"",
            ),
            ReqState => (
                "each request valid in the client's state (INIT, READY, PLAYING)",
                Lab,
                "\"Client changes state when it receives a reply from the server according to the following state diagram.\"",
            ),
            RtpPortOpen if tpc3 => (
                "the named UDP port receives (no ICMP port unreachable)",
                Tpc3,
                "\"UDPDataPort is the UDP port where the client will receive the datagrams containing the video\"",
            ),
            RtpPortOpen => (
                "the RTP port named in SETUP receives (no ICMP port unreachable)",
                Lab,
                "\"Create a datagram socket for receiving RTP data and set the timeout on the socket to 0.5 seconds.\"",
            ),
            ClientTeardown => (
                "TEARDOWN sent before the connection closes",
                Lab,
                "\"The client sends TEARDOWN. This command terminates the session and closes the connection.\"",
            ),
            Tpc3Request => (
                "`FILE PORT`: the file name and the UDP port",
                Tpc3,
                "\"The client connects to the TCPControlPort and sends a message with filename, UDPDataPort, where filename is a string and UDPDataPort is an integer.\"",
            ),
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which text asks for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handout {
    /// The lab's *Video Streaming with RTSP and RTP* handout.
    Lab,
    /// The TPC-3 handout.
    Tpc3,
    /// The RFCs, for the standard dialect.
    Rfc,
}

impl fmt::Display for Handout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handout::Lab => "the lab handout",
            Handout::Tpc3 => "the TPC-3 handout",
            Handout::Rfc => "the RFC",
        })
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub id: CheckId,
    pub ok: bool,
    /// What was seen (on a failure: where, naming bytes and bits).
    pub seen: String,
    /// What the handout asks, with its words.
    pub expected: String,
    /// The first offending packet (its first bytes, at least the 12 of the
    /// RTP header where it had them), for RTP checks that failed.
    pub packet: Option<Vec<u8>>,
}

/// Every check's verdict, in the order printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }

    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }

    pub fn get(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The ids that failed.
    pub fn failures(&self) -> Vec<CheckId> {
        self.checks.iter().filter(|c| !c.ok).map(|c| c.id).collect()
    }

    /// `{"checks": [{"id", "ok", "seen", "expected"}...], "passed": N, "failed": N}`
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "checks": self.checks.iter().map(|c| serde_json::json!({
                "id": c.id.as_str(),
                "ok": c.ok,
                "seen": c.seen,
                "expected": c.expected,
            })).collect::<Vec<_>>(),
            "passed": self.passed(),
            "failed": self.failed(),
        })
    }
}
