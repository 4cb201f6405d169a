#!/usr/bin/env python3
"""Write seed inputs for the fuzz targets from real wire bytes.

    python3 fuzz/seeds.py OUT_DIR [CAMERAS_DIR]

Writes OUT_DIR/<target>/<name> for every target of fuzz/fuzz_targets, in
the script format its body in src/fuzzing.rs reads, from the captures in
tests/fixtures (and, given CAMERAS_DIR, from the camera replies in
shared/fixtures/cameras, which are read in place and never copied into the
project: give the fuzzer OUT_DIR as a second, read-only corpus directory).
"""

import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"

# Opcodes of streamlab::fuzzing::client_connection.
SETUP, PLAY, PAUSE, TEARDOWN, CREDENTIALS, WAIT, MEDIA_SEEN, FEED = 0, 1, 3, 4, 7, 9, 10, 14


def write(out, target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def with_cseq(reply, cseq):
    """The reply answering request number `cseq` (our client counts from 1)."""
    return re.sub(rb"(?im)^(cseq:[ \t]*)\d+", lambda m: m.group(1) + str(cseq).encode(), reply, count=1)


def feed(b):
    return bytes([FEED]) + struct.pack(">H", len(b)) + b


def client_script(cfg, replies, auth_retry=False):
    """SETUP (OPTIONS, DESCRIBE, SETUP), PLAY, media, TEARDOWN, answered by
    `replies` (method -> bytes) in order."""
    s = bytes([cfg, SETUP])
    n = 0
    for method in ["OPTIONS", "DESCRIBE", "SETUP"]:
        if method in replies:
            n += 1
            s += feed(with_cseq(replies[method], n))
    s += bytes([PLAY])
    if "PLAY" in replies:
        n += 1
        s += feed(with_cseq(replies["PLAY"], n))
    s += bytes([WAIT, 10, MEDIA_SEEN, WAIT, 40, TEARDOWN])
    if "TEARDOWN" in replies:
        n += 1
        s += feed(with_cseq(replies["TEARDOWN"], n))
    return s


def body_of(reply):
    i = reply.find(b"\r\n\r\n")
    return reply[i + 4 :] if i >= 0 else b""


def packets(name):
    return [p.read_bytes() for p in sorted((FIX / "rtp" / name).glob("*.bin"))]


def rtp_script(cfg, pkts, step=1):
    s = bytes([cfg])
    for p in pkts:
        s += bytes([step << 2]) + struct.pack(">H", len(p)) + p
    return s


def interleave(pkts, channel=0):
    return b"".join(b"$" + bytes([channel]) + struct.pack(">H", len(p)) + p for p in pkts)


def dollar_frames(stream):
    """(channel, payload) of every `$` frame in a client's TCP session."""
    out, i = [], 0
    while (i := stream.find(b"$", i)) >= 0 and i + 4 <= len(stream):
        n = struct.unpack(">H", stream[i + 2 : i + 4])[0]
        out.append((stream[i + 1], stream[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def sender_report(ssrc=0x5354_4C42):
    return struct.pack(">BBHIIIIII", 0x80, 200, 6, ssrc, 3_900_000_000, 1 << 31, 90_000, 10, 5000)


def lab_file(jpegs):
    return b"".join(b"%05d" % len(j) + j for j in jpegs)


def main():
    out = Path(sys.argv[1])
    cameras = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    req = FIX / "requests"
    rep = FIX / "replies"

    # RTSP decoder and server: what real clients sent, whole sessions.
    order = ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "PAUSE", "TEARDOWN"]
    lab = [
        b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\nTransport: RTP/UDP; client_port= 25000",
        b"PLAY movie.Mjpeg RTSP/1.0\nCSeq: 2\nSession: 123456",
        b"PAUSE movie.Mjpeg RTSP/1.0\nCSeq: 3\nSession: 123456",
        b"TEARDOWN movie.Mjpeg RTSP/1.0\nCSeq: 4\nSession: 123456",
    ]
    sessions = {"lab": b"\n".join(lab)}
    for peer in ["ffmpeg_udp", "ffmpeg_tcp", "ffprobe_udp", "gstreamer_udp", "gstreamer_tcp", "opencv"]:
        sessions[peer] = b"".join(
            (req / f"{peer}_{m}.txt").read_bytes() for m in order if (req / f"{peer}_{m}.txt").exists()
        )
    for f in sorted(req.glob("*_session.bin")):
        sessions[f.stem] = f.read_bytes()
    for name, s in sessions.items():
        write(out, "rtsp_decoder", name, bytes([0xFF, 0x00]) + s)
        write(out, "server_connection", name, bytes([0x00, 0xFF, 0x01]) + s)
    write(out, "rtsp_decoder", "lab_quiet_bytewise", bytes([0x00, 0xFF]) + lab[0])
    for f in sorted(rep.glob("*.txt")):
        write(out, "rtsp_decoder", f.stem, bytes([0xFF, 0x00]) + f.read_bytes())

    # Client: gst-rtsp-server's replies, the lab's, and a 401 answered.
    gst = {m: (rep / f"gst_rtsp_server_{m}.txt").read_bytes() for m in ["OPTIONS", "DESCRIBE", "PLAY", "TEARDOWN"]}
    write(out, "client_connection", "gst_udp", client_script(1, {**gst, "SETUP": (rep / "gst_rtsp_server_SETUP_udp.txt").read_bytes()}))
    write(out, "client_connection", "gst_tcp", client_script(1 | 4, {**gst, "SETUP": (rep / "gst_rtsp_server_SETUP_tcp.txt").read_bytes()}))
    denied = (rep / "gst_rtsp_server_DESCRIBE_401.txt").read_bytes()
    write(
        out,
        "client_connection",
        "gst_401_digest",
        bytes([1 | 8, SETUP]) + feed(with_cseq(gst["OPTIONS"], 1)) + feed(with_cseq(denied, 2)) + feed(with_cseq(gst["DESCRIBE"], 3)),
    )
    write(
        out,
        "client_connection",
        "gst_401_then_credentials",
        bytes([1, SETUP]) + feed(with_cseq(gst["OPTIONS"], 1)) + feed(with_cseq(denied, 2)) + bytes([CREDENTIALS]) + feed(with_cseq(gst["DESCRIBE"], 3)),
    )
    lab_replies = b"".join(
        bytes([FEED]) + struct.pack(">H", len(r)) + r
        for r in [b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456"]
    )
    write(
        out,
        "client_connection",
        "lab",
        bytes([2, SETUP]) + lab_replies + bytes([PLAY]) + feed(b"RTSP/1.0 200 OK\nCSeq: 2\nSession: 123456")
        + bytes([WAIT, 20, PAUSE]) + feed(b"RTSP/1.0 200 OK\nCSeq: 3\nSession: 123456") + bytes([TEARDOWN]),
    )
    # PLAY again with no reply: the media timers wait for it (a timer left
    # in the past here once spun the engine).
    write(
        out,
        "client_connection",
        "play_twice_unanswered",
        bytes([1, SETUP])
        + feed(with_cseq(gst["OPTIONS"], 1))
        + feed(with_cseq(gst["DESCRIBE"], 2))
        + feed(with_cseq((rep / "gst_rtsp_server_SETUP_udp.txt").read_bytes(), 3))
        + bytes([PLAY])
        + feed(with_cseq(gst["PLAY"], 4))
        + bytes([PLAY, WAIT, 40]),
    )
    write(out, "client_connection", "auto_lab_fallback", bytes([0, SETUP, WAIT, 12]) + feed(b"RTSP/1.0 200 OK\nCSeq: 1\nSession: 123456"))

    # SDP: every DESCRIBE answer.
    write(out, "sdp", "gst_rtsp_server", body_of(gst["DESCRIBE"]))

    # RTP: every capture, in order, also through the reorder window; the
    # lab's whole-JPEG packets.
    for d in sorted((FIX / "rtp").iterdir()):
        pkts = packets(d.name)
        write(out, "rtp", d.name, rtp_script(0, pkts))
        write(out, "rtp", d.name + "_reorder", rtp_script(1, pkts[:12]))
        write(out, "interleaved", d.name, bytes([0, 0xFF]) + gst["PLAY"] + interleave(pkts[:12]) + interleave([sender_report()], 1))
    jpegs = [(FIX / "rtp" / "gst_320x240_i420" / f"source_{i}.jpg").read_bytes() for i in range(2)]
    lab_pkts = [struct.pack(">BBHII", 0x80, 26, i + 1, 1_700_000_000, 123456) + j for i, j in enumerate(jpegs)]
    write(out, "rtp", "lab_whole_jpeg", rtp_script(0, lab_pkts, step=12))

    # RTCP: what clients sent inside their TCP sessions, and a sender report.
    for f in sorted(req.glob("*_session.bin")):
        for i, (channel, payload) in enumerate(dollar_frames(f.read_bytes())):
            if channel % 2 == 1:
                write(out, "rtcp", f"{f.stem}_{i}", payload)
        write(out, "interleaved", f.stem, bytes([0, 0x40]) + f.read_bytes())
    write(out, "rtcp", "sender_report", sender_report())

    # Authentication: gst-rtsp-server's challenge, and the other forms.
    challenges = re.findall(rb"(?im)^www-authenticate:[ \t]*(.*?)\r?$", denied)
    write(out, "auth", "gst_digest", b"\n".join(challenges))
    write(out, "auth", "basic", b'Basic realm="IP Camera"')
    write(out, "auth", "digest_qop", b'Digest realm="r", nonce="abc", qop="auth,auth-int", opaque="o", algorithm=MD5\nBasic realm="r"')

    # .Mjpeg files: the lab's framing and raw JPEGs.
    write(out, "mjpeg_file", "lab_framing", lab_file(jpegs))
    write(out, "mjpeg_file", "raw_jpegs", b"".join(jpegs))

    if cameras:
        for cam in sorted(p for p in cameras.iterdir() if p.is_dir()):
            files = {f.name: f.read_bytes() for f in cam.glob("*.txt")}
            if "DESCRIBE.txt" in files:
                write(out, "sdp", cam.name, body_of(files["DESCRIBE.txt"]))
                write(out, "rtsp_decoder", cam.name, bytes([0xFF, 0x00]) + files["DESCRIBE.txt"])
            replies = {
                "OPTIONS": files.get("OPTIONS.txt", gst["OPTIONS"]),
                "DESCRIBE": files.get("DESCRIBE.txt", gst["DESCRIBE"]),
                "SETUP": files.get("SETUP.udp.txt", files.get("SETUP.txt", b"")),
                "PLAY": files.get("PLAY.txt", b""),
                "TEARDOWN": files.get("TEARDOWN.txt", b""),
            }
            replies = {k: v for k, v in replies.items() if v}
            write(out, "client_connection", cam.name, client_script(1, replies))


if __name__ == "__main__":
    main()
