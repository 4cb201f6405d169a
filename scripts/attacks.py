#!/usr/bin/python3
"""The server under churn, slowloris and a long soak, each a documented run
(issue 11): it starts our server (a fresh process serving the lab's
movie.Mjpeg, looping), does one thing to it, reads the server's threads,
file descriptors and RSS from /proc/PID before, during and after, and
prints what it saw (Markdown, or JSON with --json).

  churn      N clients (default 500, in --rounds 3) SETUP and PLAY, see their
             first packet, then vanish in turn: close without TEARDOWN, reset (RST),
             stop reading (interleaved, a 4 KB receive window) and
             half-open (nothing more sent, RTP port closed); the server's
             counts must come back to where they were.
  slowloris  N connections (default 1000) from 127.0.0.2-127.0.0.11 trickle
             half requests (reconnecting when the server closes them) while
             `streamlab load` plays 20 honest sessions and new connections
             are timed.
  soak       `streamlab load` keeps 100 sessions for 10 minutes; the
             server's RSS, descriptors and threads are sampled.

Usage: scripts/attacks.py churn|slowloris|soak [--n N] [--seconds S]
         [--bin target/release/streamlab] [--json]
Only 127.0.0.0/8 is used.
"""

import argparse
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MEDIA = os.path.join(REPO, "..", "shared", "media")
FILE = "movie.Mjpeg"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(binary, extra=()):
    port = free_port()
    args = [binary, "serve", str(port), "--bind", "127.0.0.1", "--root", MEDIA,
            "--loop", "--max-connections", "0", "--max-sessions", "0",
            "--max-per-address", "0", *extra]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, RUST_LOG="error"))
    end = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)


def counts(pid):
    """Threads, file descriptors and RSS (KiB) of process `pid`."""
    threads = len(os.listdir(f"/proc/{pid}/task"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"threads": threads, "fds": fds, "rss_kib": rss}


def read_reply(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[length:]


def request(sock, method, url, cseq, extra=""):
    sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
    return read_reply(sock)


class Client:
    """One standard client that plays, then vanishes in `mode`."""

    def __init__(self, port, mode):
        self.mode = mode
        self.url = f"rtsp://127.0.0.1:{port}/{FILE}"
        self.rtsp = socket.socket()
        if mode == "stop-reading":
            self.rtsp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.rtsp.settimeout(10)
        self.rtsp.connect(("127.0.0.1", port))
        self.rtp = None

    def play(self):
        if self.mode == "stop-reading":
            transport = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
        else:
            self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rtp.bind(("127.0.0.1", 0))
            self.rtp.settimeout(10)
            p = self.rtp.getsockname()[1]
            transport = f"Transport: RTP/AVP;unicast;client_port={p}-{p + 1}\r\n"
        status, headers, leftover = request(self.rtsp, "SETUP", self.url, 1, transport)
        if status != 200:
            raise RuntimeError(f"SETUP: {status}")
        session = headers["session"].split(";")[0]
        status, _, leftover = request(self.rtsp, "PLAY", self.url, 2, f"Session: {session}\r\n")
        if status != 200:
            raise RuntimeError(f"PLAY: {status}")
        if self.rtp is not None:
            self.rtp.recv(65536)
        elif not leftover:
            self.rtsp.recv(4)

    def vanish(self):
        """Leave without TEARDOWN; returns what must stay open until the end."""
        if self.mode == "close":
            self.rtsp.close()
        elif self.mode == "reset":
            self.rtsp.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rtsp.close()
        elif self.mode == "half-open":
            # Nothing more from this client, and its RTP port is gone: what
            # a client whose machine vanished looks like from the server.
            self.rtp.close()
            return self.rtsp
        elif self.mode == "stop-reading":
            return self.rtsp
        if self.rtp is not None:
            self.rtp.close()
        return None


MODES = ["close", "reset", "stop-reading", "half-open"]


def back_to(pid, baseline, limit):
    """Seconds until threads and descriptors are back to the baseline, or
    None after `limit`. RSS is reported, not waited for: the allocator
    keeps freed memory for reuse, so it shows on the next round."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        c = counts(pid)
        if c["threads"] <= baseline["threads"] and c["fds"] <= baseline["fds"]:
            return round(time.monotonic() - start, 2), c
        time.sleep(0.1)
    return None, counts(pid)


def churn(a):
    proc, port = start_server(a.bin, ["--session-timeout", "5"])
    try:
        # One client plays for a while first, so that the file's index and
        # its frames re-encoded for RFC 2435 (a cache that stays) are in
        # the baseline.
        warm = Client(port, "close")
        warm.play()
        end = time.monotonic() + 4
        while time.monotonic() < end:
            warm.rtp.recv(65536)
        warm.vanish()
        time.sleep(1)
        baseline = counts(proc.pid)
        rounds = []
        peak = dict(baseline)
        for r in range(a.rounds):
            held = []
            started = time.monotonic()
            for i in range(a.n):
                c = Client(port, MODES[i % len(MODES)])
                c.play()
                now = counts(proc.pid)
                peak = {k: max(peak[k], now[k]) for k in now}
                keep = c.vanish()
                if keep is not None:
                    held.append(keep)
            played = round(time.monotonic() - started, 1)
            took, after = back_to(proc.pid, baseline, 120)
            for s in held:
                s.close()
            took_closed, after_closed = back_to(proc.pid, baseline, 30)
            rounds.append({
                "seconds_to_play_all": played,
                "seconds_back_while_held": took, "after_while_held": after,
                "seconds_back_after_close": took_closed, "after_close": after_closed,
            })
        return {
            "run": "churn", "clients_per_round": a.n, "modes": MODES,
            "baseline": baseline, "peak": peak, "rounds": rounds,
        }
    finally:
        proc.terminate()
        proc.wait()


def trickle(port, n, stop, stats):
    """Keeps `n` connections from 127.0.0.2-11 sending half a request."""
    sel = selectors.DefaultSelector()

    def connect(i):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 10}", 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, [i, 0])
        stats["opened"] += 1

    for i in range(n):
        connect(i)
    while not stop.is_set():
        for key, ev in sel.select(timeout=0.5):
            s, (i, sent) = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE and sent == 0:
                try:
                    s.send(b"OPTIONS * RTSP/1.0\r\nCSe")
                    key.data[1] = 1
                    sel.modify(s, selectors.EVENT_READ, key.data)
                except OSError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    stats["closed_by_server"] += 1
                    connect(i)
        stats["open_now"] = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def slowloris(a):
    proc, port = start_server(a.bin)
    try:
        stop = threading.Event()
        stats = {"opened": 0, "closed_by_server": 0, "open_now": 0}
        t = threading.Thread(target=trickle, args=(port, a.n, stop, stats), daemon=True)
        t.start()
        time.sleep(3)
        during = counts(proc.pid)
        load = subprocess.Popen(
            [a.bin, "load", f"rtsp://127.0.0.1:{port}/{FILE}", "--sessions", "20",
             "--seconds", str(a.seconds), "--json", "--server-pid", str(proc.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answers = []
        while load.poll() is None:
            t0 = time.monotonic()
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            status, _, _ = request(s, "OPTIONS", "*", 1)
            answers.append((status, time.monotonic() - t0))
            s.close()
            time.sleep(0.5)
        out, err = load.communicate()
        stop.set()
        t.join()
        honest = json.loads(out) if out.strip() else {"error": err}
        return {
            "run": "slowloris", "attackers": a.n, "attack": stats, "server_during": during,
            "honest": {k: honest.get(k) for k in
                       ("sessions", "playing", "on_time", "passes", "late_p50_ms",
                        "late_p99_ms", "late_max_ms", "loss", "frames_expected",
                        "frames_received", "server_cpu_percent", "error")},
            "new_connections": len(answers),
            "new_connection_statuses": sorted({s for s, _ in answers}),
            "new_connection_ms_max": round(1000 * max((d for _, d in answers), default=0), 1),
        }
    finally:
        proc.terminate()
        proc.wait()


def soak(a):
    proc, port = start_server(a.bin)
    try:
        load = subprocess.Popen(
            [a.bin, "load", f"rtsp://127.0.0.1:{port}/{FILE}", "--sessions", str(a.n),
             "--seconds", str(a.seconds), "--json", "--server-pid", str(proc.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples, t0 = [], time.monotonic()
        while load.poll() is None:
            samples.append({"t": round(time.monotonic() - t0), **counts(proc.pid)})
            time.sleep(15)
        out, err = load.communicate()
        result = json.loads(out) if out.strip() else {"error": err}
        after_minute = [s for s in samples if s["t"] >= 60]
        return {
            "run": "soak", "sessions": a.n, "seconds": a.seconds, "samples": samples,
            "rss_kib_first_minute": after_minute[0]["rss_kib"] if after_minute else None,
            "rss_kib_end": samples[-1]["rss_kib"] if samples else None,
            "fds_range": [min(s["fds"] for s in after_minute), max(s["fds"] for s in after_minute)]
            if after_minute else None,
            "threads_range": [min(s["threads"] for s in after_minute),
                              max(s["threads"] for s in after_minute)] if after_minute else None,
            "load": {k: result.get(k) for k in
                     ("playing", "on_time", "passes", "late_p99_ms", "loss",
                      "frames_expected", "frames_received", "server_cpu_percent", "error")},
        }
    finally:
        proc.terminate()
        proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", choices=["churn", "slowloris", "soak"])
    p.add_argument("--n", type=int)
    p.add_argument("--seconds", type=int)
    p.add_argument("--rounds", type=int, default=3, help="churn: rounds of N clients")
    p.add_argument("--bin", default=os.path.join(REPO, "target", "release", "streamlab"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    defaults = {"churn": (500, 0), "slowloris": (1000, 20), "soak": (100, 600)}
    n, seconds = defaults[a.run]
    a.n = a.n or n
    a.seconds = a.seconds or seconds
    random.seed(1)
    result = {"churn": churn, "slowloris": slowloris, "soak": soak}[a.run](a)
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    sys.exit(main())
