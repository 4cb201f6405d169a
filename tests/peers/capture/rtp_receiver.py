#!/usr/bin/env python3
"""Save every UDP datagram received on 127.0.0.1:PORT as OUTDIR/NNNN.bin.

Used to capture RTP/JPEG fixtures from GStreamer's rtpjpegpay byte-exact
(RTP header included). Stops after --idle seconds without a datagram once
the first one arrived, or after --max-wait seconds in all.

    python3 rtp_receiver.py --port 5600 --out tests/fixtures/rtp/NAME
"""
import argparse
import os
import socket
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--idle", type=float, default=1.5)
    ap.add_argument("--max-wait", type=float, default=30.0)
    ap.add_argument("--ready-file", help="touched once the socket is bound")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", args.port))
    if args.ready_file:
        open(args.ready_file, "w").close()
    start = time.monotonic()
    n = 0
    while True:
        waited = time.monotonic() - start
        sock.settimeout(args.idle if n else max(0.1, args.max_wait - waited))
        try:
            data, _addr = sock.recvfrom(65536)
        except socket.timeout:
            break
        with open(os.path.join(args.out, "%04d.bin" % n), "wb") as f:
            f.write(data)
        n += 1
        if time.monotonic() - start > args.max_wait:
            break
    print("%d datagrams -> %s" % (n, args.out), file=sys.stderr)
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
