#!/usr/bin/env python3
"""Capture what GStreamer's RTSP server answers, byte-exact, into
tests/fixtures/replies/gst_rtsp_server_<WHAT>.txt: OPTIONS, DESCRIBE (the
SDP), SETUP over UDP and over TCP, PLAY, TEARDOWN, and the 401 Digest
challenge it gives a DESCRIBE without credentials.

The server is tests/peers/gst_rtsp_server.py on 127.0.0.1 (a free port),
serving 1920x1080 at 30 fps; this script is the client (stdlib only) and
sends requests like Streamlab's. RTP is sent to UDP ports this script
holds, on 127.0.0.1.

Run from the crate root, with a python3 that has python3-gi and
gir1.2-gst-rtsp-server-1.0 (the server needs them):
    /usr/bin/python3 tests/peers/capture/capture_gst_replies.py
"""

import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "gst_rtsp_server.py")
OUT = os.environ.get("OUT", "tests/fixtures/replies")


def start(*args):
    p = subprocess.Popen(
        [sys.executable, SERVER, "--port", "0", "--size", "1920x1080", "--fps", "30", *args],
        stdout=subprocess.PIPE,
    )
    return p, int(p.stdout.readline())


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.cseq = 0
        self.buf = b""

    def request(self, method, url, headers=()):
        """Send one request; return the whole reply, byte-exact."""
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", "User-Agent: streamlab"]
        lines += list(headers)
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.recv()
        reply = head + b"\r\n\r\n" + rest[:length]
        self.buf = rest[length:]
        return reply

    def recv(self):
        data = self.s.recv(65536)
        if not data:
            sys.exit("the server closed the connection")
        return data


def header(reply, name):
    for line in reply.split(b"\r\n"):
        n, _, v = line.partition(b":")
        if n.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


def save(what, reply):
    path = os.path.join(OUT, f"gst_rtsp_server_{what}.txt")
    with open(path, "wb") as f:
        f.write(reply)
    status = reply.split(b"\r\n")[0].decode()
    print(f"{path}: {status}")


def udp_pair():
    while True:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind(("127.0.0.1", port + 1))
                return rtp, rtcp
            except OSError:
                pass
        rtp.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    server, port = start()
    try:
        url = f"rtsp://127.0.0.1:{port}/test"
        c = Client(port)
        save("OPTIONS", c.request("OPTIONS", url))
        describe = c.request("DESCRIBE", url, ["Accept: application/sdp"])
        save("DESCRIBE", describe)
        base = header(describe, "Content-Base") or url
        # The track's a=control, relative to Content-Base (one m= line).
        control = [
            line[len(b"a=control:"):].decode()
            for line in describe.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
            if line.startswith(b"a=control:")
        ][-1]
        track = base.rstrip("/") + "/" + control
        rtp, rtcp = udp_pair()
        p = rtp.getsockname()[1]
        setup = c.request(
            "SETUP", track, [f"Transport: RTP/AVP;unicast;client_port={p}-{p + 1}"]
        )
        save("SETUP_udp", setup)
        session = header(setup, "Session").split(";")[0]
        save("PLAY", c.request("PLAY", base, [f"Session: {session}", "Range: npt=0-"]))
        rtp.settimeout(10)
        rtp.recv(65536)  # the stream started
        save("TEARDOWN", c.request("TEARDOWN", base, [f"Session: {session}"]))

        c = Client(port)
        c.request("OPTIONS", url)
        c.request("DESCRIBE", url, ["Accept: application/sdp"])
        setup = c.request(
            "SETUP", track, ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1"]
        )
        save("SETUP_tcp", setup)
    finally:
        server.kill()
        server.wait()

    server, port = start("--user", "admin", "--password", "s3cret")
    try:
        url = f"rtsp://127.0.0.1:{port}/test"
        c = Client(port)
        save("DESCRIBE_401", c.request("DESCRIBE", url, ["Accept: application/sdp"]))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
