#!/usr/bin/env python3
"""A small RTSP/1.0 server (RFC 2326) that records what real clients send.

Python 3 standard library only. Listens on 127.0.0.1 (never elsewhere) and,
for every TCP connection, writes every received byte to
LOG_DIR/<peer>_conn<N>.raw (and what it answered to <peer>_conn<N>.sent).
Each request it reads is also saved byte-exact (CRLF kept, body included)
as OUT_DIR/<peer>_<METHOD>.txt; a method seen again in the same run is
saved as <peer>_<METHOD>_2.txt, _3, ...

It answers just well enough for a client to go through OPTIONS, DESCRIBE
(one MJPEG track, RTP/AVP 26), SETUP (UDP or interleaved TCP), PLAY, then
GET_PARAMETER / SET_PARAMETER / TEARDOWN. After PLAY it sends RTP/JPEG
(RFC 2435) packets, replayed from a directory of captured datagrams
(default: the rtpjpegpay capture in tests/fixtures/rtp/gst_320x240_i420)
with its own sequence numbers, timestamps and SSRC, at --fps frames/s,
to 127.0.0.1:client_port (UDP) or as `$` frames on the connection (TCP).

    python3 rtsp_capture_server.py --port 8554 --peer ffmpeg_udp \\
        --out tests/fixtures/requests --log-dir /tmp/rtsp-logs

Stops after --max-connections connections have closed (default: run until
killed) or after --lifetime seconds.
"""
import argparse
import glob
import os
import re
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
SESSION = "12345678"
SSRC = 0x1234ABCD
FIRST_SEQ = 1000
FIRST_TS = 90000


def load_frames(rtp_dir):
    """Group captured RTP datagrams into frames (lists of payloads)."""
    frames, cur = [], []
    for path in sorted(glob.glob(os.path.join(rtp_dir, "*.bin"))):
        with open(path, "rb") as f:
            pkt = f.read()
        cur.append(pkt[12:])
        if pkt[1] & 0x80:
            frames.append(cur)
            cur = []
    if not frames:
        raise SystemExit("no RTP frames in %s" % rtp_dir)
    return frames


class Capture:
    """Shared state: where to write, and per-method counters."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seen = {}
        self.conn_no = 0
        self.closed = 0
        self.frames = load_frames(args.rtp_dir)
        os.makedirs(args.out, exist_ok=True)
        os.makedirs(args.log_dir, exist_ok=True)

    def next_conn(self):
        with self.lock:
            self.conn_no += 1
            return self.conn_no

    def save_request(self, method, raw):
        only = [m for m in self.args.only.split(",") if m]
        if only and method not in only:
            return
        with self.lock:
            n = self.seen.get(method, 0) + 1
            self.seen[method] = n
        name = "%s_%s%s.txt" % (self.args.peer, method, "" if n == 1 else "_%d" % n)
        with open(os.path.join(self.args.out, name), "wb") as f:
            f.write(raw)
        log("saved %s (%d bytes)" % (name, len(raw)))


def log(msg):
    print("[capture] %s" % msg, file=sys.stderr, flush=True)


def header(head, name):
    for line in head.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            if k.strip().lower() == name.lower():
                return v.strip()
    return None


class Connection:
    def __init__(self, cap, sock, addr):
        self.cap = cap
        self.sock = sock
        self.addr = addr
        self.no = cap.next_conn()
        base = os.path.join(cap.args.log_dir, "%s_conn%d" % (cap.args.peer, self.no))
        self.raw = open(base + ".raw", "wb")
        self.sent = open(base + ".sent", "wb")
        self.wlock = threading.Lock()
        self.stop = threading.Event()
        self.sender = None
        self.transport = None  # ("udp", port) or ("tcp", channel)
        self.udp = None

    # -- output -------------------------------------------------------------
    def send(self, data):
        with self.wlock:
            try:
                self.sock.sendall(data)
            except OSError as e:
                log("connection %d: send failed: %s" % (self.no, e))
                raise
            self.sent.write(data)
            self.sent.flush()

    def reply(self, cseq, status="200 OK", headers=(), body=b""):
        lines = ["RTSP/1.0 %s" % status]
        if cseq is not None:
            lines.append("CSeq: %s" % cseq)
        lines.append("Server: streamlab-capture/1.0")
        lines.extend(headers)
        if body:
            lines.append("Content-Length: %d" % len(body))
        msg = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        try:
            self.send(msg)
        except OSError:
            pass  # the peer has gone (some close right after TEARDOWN)

    # -- input --------------------------------------------------------------
    def run(self):
        buf = b""
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                self.raw.write(data)
                self.raw.flush()
                buf += data
                buf = self.drain(buf)
        finally:
            self.stop.set()
            if self.sender:
                self.sender.join()
            self.raw.close()
            self.sent.close()
            self.sock.close()
            log("connection %d closed" % self.no)
            with self.cap.lock:
                self.cap.closed += 1

    def drain(self, buf):
        while buf:
            if buf[0:1] == b"$":
                # Interleaved RTCP from the client: logged in .raw only.
                if len(buf) < 4:
                    return buf
                n = struct.unpack(">H", buf[2:4])[0]
                if len(buf) < 4 + n:
                    return buf
                buf = buf[4 + n:]
                continue
            end = buf.find(b"\r\n\r\n")
            sep = 4
            if end < 0:
                end = buf.find(b"\n\n")
                sep = 2
            if end < 0:
                return buf
            head = buf[:end].decode("latin-1")
            m = re.search(r"(?im)^content-length\s*:\s*(\d+)", head)
            body_len = int(m.group(1)) if m else 0
            total = end + sep + body_len
            if len(buf) < total:
                return buf
            raw, buf = buf[:total], buf[total:]
            self.handle(head.replace("\r\n", "\n").replace("\n", "\r\n"), raw)
        return buf

    def handle(self, head, raw):
        first = head.split("\r\n", 1)[0].split(" ")
        method = first[0] if first else "?"
        url = first[1] if len(first) > 1 else ""
        self.cap.save_request(re.sub(r"[^A-Z_]", "", method.upper()) or "UNKNOWN", raw)
        cseq = header(head, "CSeq")
        sess = ["Session: %s" % SESSION]
        base = self.base_url(url)
        if method == "OPTIONS":
            self.reply(cseq, headers=[
                "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, "
                "GET_PARAMETER, SET_PARAMETER"])
        elif method == "DESCRIBE":
            sdp = (
                "v=0\r\n"
                "o=- %s 1 IN IP4 127.0.0.1\r\n"
                "s=Streamlab capture\r\n"
                "c=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\n"
                "a=control:*\r\n"
                "a=range:npt=0-\r\n"
                "m=video 0 RTP/AVP 26\r\n"
                "a=rtpmap:26 JPEG/90000\r\n"
                "a=control:trackID=0\r\n" % SESSION
            ).encode()
            self.reply(cseq, headers=[
                "Content-Base: %s/" % base,
                "Content-Type: application/sdp"], body=sdp)
        elif method == "SETUP":
            self.setup(cseq, header(head, "Transport") or "")
        elif method == "PLAY":
            self.reply(cseq, headers=sess + [
                "Range: npt=0.000-",
                "RTP-Info: url=%s/trackID=0;seq=%d;rtptime=%d" % (base, FIRST_SEQ, FIRST_TS)])
            self.start_media()
        elif method in ("GET_PARAMETER", "SET_PARAMETER", "PAUSE"):
            if method == "PAUSE":
                self.stop.set()
            self.reply(cseq, headers=sess)
        elif method == "TEARDOWN":
            self.stop.set()
            self.reply(cseq, headers=sess)
        else:
            self.reply(cseq, "501 Not Implemented")

    def base_url(self, url):
        # The presentation URL without a track suffix or trailing slash.
        url = re.sub(r"/trackID=\d+$", "", url)
        return url.rstrip("/") if url not in ("", "*") else "rtsp://%s:%d/movie.Mjpeg" % (
            HOST, self.cap.args.port)

    def setup(self, cseq, transport):
        spec = transport.split(",")[0]
        if "/TCP" in spec.upper():
            m = re.search(r"interleaved\s*=\s*(\d+)(?:-(\d+))?", spec)
            ch = int(m.group(1)) if m else 0
            ch2 = int(m.group(2)) if m and m.group(2) else ch + 1
            self.transport = ("tcp", ch)
            reply = "RTP/AVP/TCP;unicast;interleaved=%d-%d;ssrc=%08X" % (ch, ch2, SSRC)
        else:
            m = re.search(r"client_port\s*=\s*(\d+)(?:-(\d+))?", spec)
            if not m:
                self.reply(cseq, "461 Unsupported Transport")
                return
            p1 = int(m.group(1))
            p2 = int(m.group(2)) if m.group(2) else p1 + 1
            self.udp = self.cap.udp_rtp
            self.transport = ("udp", p1)
            reply = "RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d;ssrc=%08X" % (
                p1, p2, self.cap.udp_port, self.cap.udp_port + 1, SSRC)
        self.reply(cseq, headers=["Transport: %s" % reply,
                                  "Session: %s;timeout=%d" % (SESSION, self.cap.args.timeout)])

    # -- media --------------------------------------------------------------
    def start_media(self):
        if self.transport is None or self.sender is not None:
            return
        self.stop.clear()
        self.sender = threading.Thread(target=self.send_media, daemon=True)
        self.sender.start()

    def send_media(self):
        frames = self.cap.frames
        period = 1.0 / self.cap.args.fps
        seq, ts = FIRST_SEQ, FIRST_TS
        start = time.monotonic()
        deadline = start + self.cap.args.media_seconds
        i = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            payloads = frames[i % len(frames)]
            for k, payload in enumerate(payloads):
                marker = 0x80 if k == len(payloads) - 1 else 0
                pkt = struct.pack(">BBHII", 0x80, marker | 26, seq & 0xFFFF, ts & 0xFFFFFFFF, SSRC)
                pkt += payload
                seq += 1
                try:
                    if self.transport[0] == "udp":
                        self.udp.sendto(pkt, (HOST, self.transport[1]))
                    else:
                        self.send(struct.pack(">BBH", 0x24, self.transport[1], len(pkt)) + pkt)
                except OSError:
                    return
            i += 1
            ts += int(90000 * period)
            self.stop.wait(max(0.0, start + i * period - time.monotonic()))


def drain_udp(sock):
    while True:
        try:
            sock.recvfrom(65536)
        except OSError:
            return


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_rtp = os.path.normpath(os.path.join(here, "..", "..", "fixtures", "rtp", "gst_320x240_i420"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--peer", required=True, help="file name prefix, e.g. ffmpeg_udp")
    ap.add_argument("--out", required=True, help="directory for <peer>_<METHOD>.txt")
    ap.add_argument("--log-dir", required=True, help="directory for raw per-connection logs")
    ap.add_argument("--rtp-dir", default=default_rtp)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--timeout", type=int, default=60, help="Session timeout= in SETUP replies")
    ap.add_argument("--media-seconds", type=float, default=20.0)
    ap.add_argument("--max-connections", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=0.0)
    ap.add_argument("--only", default="",
                    help="comma-separated methods: save only these (e.g. GET_PARAMETER)")
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    cap = Capture(args)
    # One RTP/RTCP socket pair on even/odd ports next to the RTSP port.
    cap.udp_port = (args.port + 2) & ~1
    cap.udp_rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cap.udp_rtp.bind((HOST, cap.udp_port))
    udp_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_rtcp.bind((HOST, cap.udp_port + 1))
    for s in (cap.udp_rtp, udp_rtcp):
        threading.Thread(target=drain_udp, args=(s,), daemon=True).start()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, args.port))
    srv.listen(8)
    srv.settimeout(0.2)
    log("listening on rtsp://%s:%d/ (RTP from %d)" % (HOST, args.port, cap.udp_port))
    if args.ready_file:
        open(args.ready_file, "w").close()
    started = time.monotonic()
    threads = []
    while True:
        if args.lifetime and time.monotonic() - started > args.lifetime:
            break
        with cap.lock:
            done = cap.closed
        if args.max_connections and done >= args.max_connections:
            break
        try:
            sock, addr = srv.accept()
        except socket.timeout:
            continue
        conn = Connection(cap, sock, addr)
        log("connection %d from %s:%d" % (conn.no, addr[0], addr[1]))
        t = threading.Thread(target=conn.run, daemon=True)
        t.start()
        threads.append(t)
    srv.close()
    for t in threads:
        t.join(timeout=2)


if __name__ == "__main__":
    main()
