#!/usr/bin/env python3
"""A TPC-3 server (seed 000, "Lab 08 TPC-3") written from the assignment's
text, as a student's finished Server.py would behave on the wire:

  * `python3 tpc3_server.py TCPControlPort`; each client on its own thread;
  * the client sends the file name and its UDP data port in one message
    (`movie.Mjpeg 25000`; space, comma or newline between them);
  * the server answers a random session id in ASCII decimal (with a
    newline), or `-1` when it has no such file and then closes;
  * after the client's `Go`, the file (5-digit length, then the JPEG, per
    frame) goes out at 20 datagrams a second to the client's address and
    UDP port: RTP V=2 P=0 X=0 CC=0 M=0 PT=26, sequence number from 1 (+1
    per image), timestamp int(time.time()), SSRC = the session id, payload
    one whole JPEG; it stops at the end of the file or when the client
    closes the connection.

Options for tests: `--root DIR` (files are looked up there; default the
working folder), `--bind ADDR` (default 127.0.0.1), `--period SECONDS`
(default 0.05). PORT 0 picks a free port; the first stdout line is
`listening on PORT`.
"""

import os
import random
import socket
import struct
import sys
import threading
import time


def frames(path):
    with open(path, "rb") as f:
        while True:
            head = f.read(5)
            if len(head) < 5:
                return
            data = f.read(int(head))
            if not data:
                return
            yield data


def rtp_header(seq, ts, ssrc):
    # V=2 (bits 0-1), P=0, X=0, CC=0; M=0, PT=26; then 16, 32, 32 bits.
    return struct.pack("!BBHII", 2 << 6, 26, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def serve(conn, addr, root, period):
    try:
        request = conn.recv(1024).decode("utf-8", "replace")
        parts = request.replace(",", " ").split()
        name, port = parts[0], int(parts[1])
        path = os.path.join(root, os.path.basename(name))
        if not os.path.isfile(path):
            conn.sendall(b"-1\n")
            return
        session = random.randint(100000, 999999)
        conn.sendall(f"{session}\n".encode())
        if conn.recv(64).strip() != b"Go":
            return
        stop = threading.Event()

        def watch():
            try:
                while conn.recv(64):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start = time.monotonic()
        for seq, jpeg in enumerate(frames(path), start=1):
            # On a schedule, so the rate holds (20 a second).
            if stop.wait(max(0.0, start + seq * period - time.monotonic())):
                break
            udp.sendto(rtp_header(seq, int(time.time()), session) + jpeg, (addr[0], port))
        udp.close()
    except (OSError, ValueError, IndexError):
        pass
    finally:
        conn.close()


def main():
    args = sys.argv[1:]
    root, bind, period = ".", "127.0.0.1", 0.05
    port = int(args.pop(0))
    while args:
        opt = args.pop(0)
        if opt == "--root":
            root = args.pop(0)
        elif opt == "--bind":
            bind = args.pop(0)
        elif opt == "--period":
            period = float(args.pop(0))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(16)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    while True:
        conn, addr = listener.accept()
        threading.Thread(target=serve, args=(conn, addr, root, period), daemon=True).start()


if __name__ == "__main__":
    main()
