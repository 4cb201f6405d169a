#!/usr/bin/env python3
"""A stand-in for the lab's reference server (Server.py + ServerWorker.py +
VideoStream.py + RtpPacket.py), written from shared/docs/lab-dialect.md and
the lab text, not copied from the published code. On the wire it behaves as
the reference does:

  * one worker thread per RTSP connection; each request is one recv(256),
    split on LF; method and file name are words 1 and 2 of line 1, the CSeq
    is word 2 of line 2, the RTP port is word 4 of line 3 (SETUP);
  * replies are exactly `RTSP/1.0 200 OK\\nCSeq: N\\nSession: S` (LF, no
    trailing newline), session ids random in 100000..999999;
  * a request in the wrong state, or an unknown method, gets NO reply;
  * PLAY starts a sender thread: wait PERIOD (event.wait), stop if the event
    is set, else read the next frame and send it as one RTP datagram
    (V=2 P=0 X=0 CC=0 M=0 PT=26, seq = frame number from 1, timestamp =
    int(time.time()), SSRC 0, payload = the whole JPEG) from a new UDP
    socket to (the RTSP peer's IP, the SETUP port);
  * PAUSE (in PLAYING) sets the event; TEARDOWN sets the event, replies and
    closes the RTP socket without changing the state;
  * the worker dies on inputs the reference crashes on (a missing line 2, a
    TEARDOWN before any PLAY, bytes that are not UTF-8): it then closes the
    connection without a word, as the reference's worker does when its
    thread dies and the socket is collected.

Deliberate differences, for tests:
  * a SETUP for a file that cannot be opened gets
    `RTSP/1.0 404 Not Found\\nCSeq: N\\nSession: S` and stays in INIT;
  * at the end of the file the sender thread ends (the reference keeps
    waking up and sending nothing: same bytes on the wire);
  * the worker ends when the peer closes the connection (the reference
    spins on recv() returning b'');
  * `--bind ADDR` (default 127.0.0.1; the reference binds all interfaces,
    use `--bind 0.0.0.0` for that) and `--period SECONDS` (default 0.05).

Usage: lab_server.py PORT [--bind ADDR] [--period SECONDS] [--verbose]
PORT 0 picks a free port. The first stdout line is `listening on PORT`;
nothing else is written to stdout (logging, with --verbose, goes to stderr).
"""

import os
import random
import socket
import struct
import sys
import threading
import time

INIT, READY, PLAYING = 0, 1, 2
VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write("[lab_server] %s\n" % msg)
        sys.stderr.flush()


class VideoStream:
    """The lab's "proprietary MJPEG": 5 ASCII digits of length, then a JPEG."""

    def __init__(self, filename):
        # IOError (OSError) propagates, as in the reference.
        self.file = open(filename, "rb")
        self.frame_num = 0

    def next_frame(self):
        head = self.file.read(5)
        if len(head) < 5:
            return b""
        length = int(head)
        frame = self.file.read(length)
        self.frame_num += 1
        return frame

    def frame_nbr(self):
        return self.frame_num


def make_rtp(payload, seqnum):
    version, padding, extension, cc, marker, pt, ssrc = 2, 0, 0, 0, 0, 26, 0
    timestamp = int(time.time()) & 0xFFFFFFFF
    b0 = (version << 6) | (padding << 5) | (extension << 4) | cc
    b1 = (marker << 7) | pt
    return struct.pack("!BBHII", b0, b1, seqnum & 0xFFFF, timestamp, ssrc) + payload


class Worker:
    def __init__(self, conn, addr, period):
        self.conn = conn
        self.addr = addr
        self.period = period
        self.state = INIT
        self.session = 0
        self.rtp_port = 0
        self.stream = None
        self.event = None
        self.rtp_socket = None

    def run(self):
        try:
            while True:
                data = self.conn.recv(256)
                if not data:
                    log("%s closed the connection" % (self.addr,))
                    break
                self.process(data.decode("utf-8"))
        except Exception as e:  # the reference's worker thread dies here
            log("worker for %s died: %r" % (self.addr, e))
        finally:
            try:
                self.conn.close()
            except OSError:
                pass

    def reply(self, text):
        self.conn.send(text.encode())

    def ok(self, cseq):
        self.reply("RTSP/1.0 200 OK\nCSeq: %s\nSession: %d" % (cseq, self.session))

    def process(self, data):
        log("request from %s: %r" % (self.addr, data))
        request = data.split("\n")
        line1 = request[0].split(" ")
        method = line1[0]
        filename = line1[1]
        cseq = request[1].split(" ")[1]

        if method == "SETUP":
            if self.state == INIT:
                try:
                    self.stream = VideoStream(filename)
                except IOError:
                    self.session = random.randint(100000, 999999)
                    self.reply(
                        "RTSP/1.0 404 Not Found\nCSeq: %s\nSession: %d"
                        % (cseq, self.session)
                    )
                    return
                self.state = READY
                self.session = random.randint(100000, 999999)
                self.ok(cseq)
                self.rtp_port = int(request[2].split(" ")[3])
        elif method == "PLAY":
            if self.state == READY:
                self.state = PLAYING
                self.rtp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.ok(cseq)
                self.event = threading.Event()
                t = threading.Thread(
                    target=self.send_rtp, args=(self.event, self.rtp_socket)
                )
                t.daemon = True
                t.start()
        elif method == "PAUSE":
            if self.state == PLAYING:
                self.state = READY
                self.event.set()
                self.ok(cseq)
        elif method == "TEARDOWN":
            # Before any PLAY there is no event: the reference's worker dies
            # (KeyError) without replying.
            if self.event is None:
                raise RuntimeError("TEARDOWN before PLAY")
            self.event.set()
            self.ok(cseq)
            self.rtp_socket.close()
        # Anything else: no reply at all.

    def send_rtp(self, event, sock):
        to = (self.addr[0], self.rtp_port)
        while True:
            event.wait(self.period)
            if event.is_set():
                break
            data = self.stream.next_frame()
            if not data:
                log("end of file after frame %d" % self.stream.frame_nbr())
                break
            try:
                sock.sendto(make_rtp(data, self.stream.frame_nbr()), to)
            except OSError as e:
                log("send failed: %r" % (e,))


def main(argv):
    global VERBOSE
    args = list(argv[1:])
    bind = "127.0.0.1"
    period = 0.05
    port = None
    while args:
        a = args.pop(0)
        if a == "--bind":
            bind = args.pop(0)
        elif a == "--period":
            period = float(args.pop(0))
        elif a == "--verbose":
            VERBOSE = True
        elif port is None:
            port = int(a)
        else:
            port = None
            break
    if port is None:
        sys.stderr.write(
            "usage: lab_server.py PORT [--bind ADDR] [--period SECONDS] [--verbose]\n"
        )
        return 2

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(5)
    sys.stdout.write("listening on %d\n" % listener.getsockname()[1])
    sys.stdout.flush()
    log("pid %d, cwd %s, period %s" % (os.getpid(), os.getcwd(), period))

    while True:
        conn, addr = listener.accept()
        t = threading.Thread(target=Worker(conn, addr, period).run)
        t.daemon = True
        t.start()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(0)
