#!/usr/bin/env python3
"""A headless stand-in for the lab's reference client (ClientLauncher.py +
Client.py + RtpPacket.py), written from shared/docs/lab-dialect.md and the
lab text, not copied from the published code. On the wire it behaves as the
reference does:

  * requests are exactly
        SETUP FILE RTSP/1.0\\nCSeq: 1\\nTransport: RTP/UDP; client_port= PORT
        PLAY FILE RTSP/1.0\\nCSeq: 2\\nSession: S
        PAUSE ... / TEARDOWN ...   (same form)
    LF line ends, no trailing newline, CSeq from 1 and +1 per request;
  * each reply is one recv(1024), split on LF: status = word 2 of line 1,
    CSeq = word 2 of line 2 (must match the request's), session = word 2 of
    line 3 (taken from the SETUP reply);
  * RTP comes to a UDP socket bound to ('', RTP_PORT) with a 0.5 s timeout,
    read with recv(20480); a packet whose sequence number is not above the
    last one is dropped; each payload is written to cache-<session>.jpg
    (in a temporary folder, removed at the end).

Differences, for tests:
  * one thread does everything in order (the reference reads replies and
    RTP on threads of its own; the bytes sent are the same);
  * RTP_PORT 0 means any free port: the UDP socket is then bound BEFORE
    SETUP so that the Transport header can carry the real port (with a
    non-zero RTP_PORT it is created and bound when the SETUP reply comes,
    as in the reference);
  * the reply's Session must be the SETUP one (the reference does not look).

Usage: lab_client.py HOST PORT RTP_PORT FILE [--frames N] [--pause-after K]
                     [--rcvbuf BYTES]

--rcvbuf asks for a bigger UDP receive buffer than the system default (the
reference does not). On Linux the default holds only about 12 datagrams of
movie.Mjpeg's size, so at 100 fps a reader that the scheduler holds off for
more than ~120 ms loses frames, whatever the server does. Nothing on the
wire changes.

Flow: SETUP, PLAY, receive until N frames (default: until 2 s pass without
a packet); with --pause-after K: PAUSE after K frames, count the frames that
reach the socket from sending PAUSE until 0.5 s after its reply (by the
kernel's arrival time where the platform gives it; paused_extra),
then PLAY again and go on. Finally TEARDOWN and read its reply.

Prints one JSON line to stdout:
  {"frames": n, "sizes": [...], "crc32": [...], "sha256": [...],
   "seqs": [...], "session": s, "statuses": [200, ...],
   "paused_extra": x or null, "stale_dropped": d, "full_reads": f,
   "errors": [...], "timing": {...} or null}
(per accepted frame, in order: payload size, zlib CRC-32, SHA-256 hex, RTP
sequence number; full_reads counts datagrams that filled the whole 20480
byte buffer, i.e. were probably truncated; timing, Linux only, is about when
the datagrams reached the socket: the longest gap, the longest burst of
datagrams less than 1 ms apart, and how far reading fell behind). Exit status 0 if every status
was 200, no error was seen and at least one frame arrived; else 1.
"""

import hashlib
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import zlib

HEADER_SIZE = 12
RECV_SIZE = 20480
QUIET_END = 2.0
# Linux: the kernel's arrival time of each datagram, for diagnostics only.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
PAUSE_WATCH = 0.5
REPLY_TIMEOUT = 5.0


class Failure(Exception):
    pass


class LabClient:
    def __init__(self, host, port, rtp_port, filename, rcvbuf=None):
        self.host = host
        self.port = port
        self.rtp_port = rtp_port
        self.rcvbuf = rcvbuf
        self.filename = filename
        self.rtsp_seq = 0
        self.session_id = 0
        self.statuses = []
        self.errors = []
        self.rtp_socket = None
        self.frame_nbr = 0  # last sequence number accepted
        self.frames = 0
        self.sizes = []
        self.crcs = []
        self.shas = []
        self.seqs = []
        self.stale = 0
        self.full_reads = 0
        self.arrivals = []  # (kernel arrival, user-space read) per datagram
        self.frame_times = []  # per accepted frame: when it reached the socket
        self.cache_dir = tempfile.mkdtemp(prefix="lab-client-")
        self.rtsp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.rtsp.settimeout(REPLY_TIMEOUT)
        self.rtsp.connect((host, port))

    # --- RTSP -------------------------------------------------------------

    def open_rtp_port(self):
        self.rtp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp_socket.settimeout(0.5)
        if self.rcvbuf:
            self.rtp_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.rtp_socket.bind(("", self.rtp_port))
        self.stamped = False
        if SO_TIMESTAMPNS is not None:
            try:
                self.rtp_socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass
        self.rtp_port = self.rtp_socket.getsockname()[1]

    def request(self, method):
        self.rtsp_seq += 1
        req = "%s %s RTSP/1.0\nCSeq: %d\n" % (method, self.filename, self.rtsp_seq)
        if method == "SETUP":
            req += "Transport: RTP/UDP; client_port= %d" % self.rtp_port
        else:
            req += "Session: %d" % self.session_id
        self.rtsp.send(req.encode("utf-8"))
        try:
            reply = self.rtsp.recv(1024)
        except socket.timeout:
            raise Failure("no reply to %s within %s s" % (method, REPLY_TIMEOUT))
        if not reply:
            raise Failure("server closed the connection instead of answering %s" % method)
        self.parse_reply(method, reply)

    def parse_reply(self, method, reply):
        try:
            lines = reply.decode("utf-8").split("\n")
            status = int(lines[0].split(" ")[1])
            cseq = int(lines[1].split(" ")[1])
            session = int(lines[2].split(" ")[1])
        except (UnicodeDecodeError, IndexError, ValueError) as e:
            raise Failure("unreadable reply to %s: %r (%r)" % (method, reply, e))
        self.statuses.append(status)
        if cseq != self.rtsp_seq:
            self.errors.append(
                "reply to %s has CSeq %d, expected %d" % (method, cseq, self.rtsp_seq)
            )
        if status != 200:
            raise Failure("%s answered with %d: %r" % (method, status, reply))
        if method == "SETUP":
            self.session_id = session
            if self.rtp_socket is None:
                self.open_rtp_port()
        elif session != self.session_id:
            self.errors.append(
                "reply to %s has Session %d, expected %d"
                % (method, session, self.session_id)
            )

    # --- RTP --------------------------------------------------------------

    def receive_one(self, timeout):
        """Wait up to `timeout` for one datagram; True if a new frame came."""
        self.rtp_socket.settimeout(min(0.5, max(timeout, 0.001)))
        arrived = None
        try:
            if self.stamped:
                data, anc, _flags, _addr = self.rtp_socket.recvmsg(RECV_SIZE, 64)
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        arrived = sec + nsec / 1e9
                        self.arrivals.append((arrived, time.time()))
            else:
                data = self.rtp_socket.recv(RECV_SIZE)
        except socket.timeout:
            return False
        if len(data) == RECV_SIZE:
            self.full_reads += 1
        if len(data) < HEADER_SIZE:
            self.errors.append("short RTP datagram (%d bytes)" % len(data))
            return False
        b0, b1, seq, _ts, _ssrc = struct.unpack("!BBHII", data[:HEADER_SIZE])
        if b0 >> 6 != 2 or b1 & 0x7F != 26:
            self.errors.append("unexpected RTP header %02x %02x" % (b0, b1))
        if seq <= self.frame_nbr:  # late packet: dropped, as the reference does
            self.stale += 1
            return False
        self.frame_nbr = seq
        payload = data[HEADER_SIZE:]
        path = os.path.join(self.cache_dir, "cache-%d.jpg" % self.session_id)
        with open(path, "wb") as f:
            f.write(payload)
        self.frames += 1
        self.sizes.append(len(payload))
        self.crcs.append(zlib.crc32(payload) & 0xFFFFFFFF)
        self.shas.append(hashlib.sha256(payload).hexdigest())
        self.seqs.append(seq)
        self.frame_times.append(arrived if arrived is not None else time.time())
        return True

    def receive_until(self, frames):
        """Receive until `frames` frames in all, or QUIET_END s of silence."""
        last = time.monotonic()
        while frames is None or self.frames < frames:
            if self.receive_one(0.5):
                last = time.monotonic()
            elif time.monotonic() - last >= QUIET_END:
                return

    def timing(self):
        """When datagrams reached the socket (kernel time): the longest gap,
        the longest run less than 1 ms apart (a burst), and how far the
        reading fell behind. None where the platform gives no times."""
        if len(self.arrivals) < 2:
            return None
        kernel = [k for k, _ in self.arrivals]
        gaps = [b - a for a, b in zip(kernel, kernel[1:])]
        run = longest = 1
        for g in gaps:
            run = run + 1 if g < 0.001 else 1
            longest = max(longest, run)
        return {
            "max_gap_ms": round(max(gaps) * 1e3, 1),
            "longest_burst": longest,
            "max_read_lag_ms": round(max(u - k for k, u in self.arrivals) * 1e3, 1),
        }

    def run(self, want, pause_after):
        paused_extra = None
        try:
            if self.rtp_port == 0:
                self.open_rtp_port()
            self.request("SETUP")
            self.request("PLAY")
            if pause_after is not None and (want is None or pause_after < want):
                self.receive_until(pause_after)
                before = self.frames
                pause_sent = time.time()
                self.request("PAUSE")
                end = time.monotonic() + PAUSE_WATCH
                while time.monotonic() < end:
                    self.receive_one(end - time.monotonic())
                # Frames that reached the socket after PAUSE was sent (those
                # queued before it, while this reader lagged, do not count).
                paused_extra = sum(1 for t in self.frame_times[before:] if t >= pause_sent)
                self.request("PLAY")
            self.receive_until(want)
            self.request("TEARDOWN")
        except Failure as e:
            self.errors.append(str(e))
        except OSError as e:
            self.errors.append("socket error: %r" % (e,))
        finally:
            for s in (self.rtsp, self.rtp_socket):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        return {
            "timing": self.timing(),
            "frames": self.frames,
            "sizes": self.sizes,
            "crc32": self.crcs,
            "sha256": self.shas,
            "seqs": self.seqs,
            "session": self.session_id,
            "statuses": self.statuses,
            "paused_extra": paused_extra,
            "stale_dropped": self.stale,
            "full_reads": self.full_reads,
            "errors": self.errors,
        }


def main(argv):
    args = list(argv[1:])
    want = None
    pause_after = None
    rcvbuf = None
    pos = []
    try:
        while args:
            a = args.pop(0)
            if a == "--frames":
                want = int(args.pop(0))
            elif a == "--pause-after":
                pause_after = int(args.pop(0))
            elif a == "--rcvbuf":
                rcvbuf = int(args.pop(0))
            else:
                pos.append(a)
        host, port, rtp_port, filename = pos
        port, rtp_port = int(port), int(rtp_port)
    except (ValueError, IndexError):
        sys.stderr.write(
            "usage: lab_client.py HOST PORT RTP_PORT FILE"
            " [--frames N] [--pause-after K] [--rcvbuf BYTES]\n"
        )
        return 2
    try:
        client = LabClient(host, port, rtp_port, filename, rcvbuf)
    except OSError as e:
        print(json.dumps({"frames": 0, "statuses": [], "errors": ["connect: %r" % (e,)]}))
        return 1
    result = client.run(want, pause_after)
    print(json.dumps(result))
    sys.stdout.flush()
    ok = (
        result["frames"] > 0
        and not result["errors"]
        and all(s == 200 for s in result["statuses"])
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
