#!/usr/bin/env python3
"""A TPC-3 client (seed 000, "Lab 08 TPC-3") written from the assignment's
text, as a student's finished Client.py would behave, without the window:

  `python3 tpc3_client.py hostname TCPControlPort UDPDataPort fileName`

It binds UDPDataPort (0: a free one), sends `fileName UDPDataPort`, reads
the session id (`-1`: no such file, exit 2), answers `Go`, then checks each
datagram as the assignment lists (V, P, X, CC, M, PT as expected; sequence
number greater than the last; timestamp reasonable; SSRC = the session id)
until `--frames N` arrived or none came for 2 s. It prints one JSON line:
the session id, the frames received, the failures by check, and the
CRC-32 of each payload in order.
"""

import json
import socket
import struct
import sys
import time
import zlib


def main():
    host, tcp_port, udp_port, name = sys.argv[1:5]
    want = None
    if "--frames" in sys.argv:
        want = int(sys.argv[sys.argv.index("--frames") + 1])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", int(udp_port)))
    udp.settimeout(2.0)
    port = udp.getsockname()[1]
    tcp = socket.create_connection((host, int(tcp_port)), timeout=10)
    tcp.sendall(f"{name} {port}".encode())
    session = int(tcp.recv(64).decode().strip())
    if session == -1:
        print(json.dumps({"session": -1}))
        sys.exit(2)
    tcp.sendall(b"Go")
    failures, digests, last = {}, [], 0

    def fail(check):
        failures[check] = failures.get(check, 0) + 1

    while want is None or len(digests) < want:
        try:
            data = udp.recv(70000)
        except socket.timeout:
            break
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        if b0 >> 6 != 2:
            fail("version")
        if (b0 >> 5) & 1:
            fail("padding")
        if (b0 >> 4) & 1:
            fail("extension")
        if b0 & 0x0F:
            fail("cc")
        if b1 >> 7:
            fail("marker")
        if b1 & 0x7F != 26:
            fail("payload_type")
        if seq <= last:
            fail("sequence")
        last = seq
        if abs(ts - time.time()) > 60:
            fail("timestamp")
        if ssrc != session:
            fail("ssrc")
        digests.append(zlib.crc32(data[12:]))
    tcp.close()
    print(json.dumps({"session": session, "frames": len(digests),
                      "failures": failures, "crc32": digests}))


if __name__ == "__main__":
    main()
