#!/usr/bin/env python3
"""GStreamer's own RTSP server (gst-rtsp-server, through python3-gi) serving
Motion-JPEG, for driving our client against a real-world server and for
measuring its CPU beside ours.

By default it serves, at rtsp://127.0.0.1:PORT/test,

  ( videotestsrc num-buffers=N pattern=P
    ! video/x-raw,format=I420,width=W,height=H,framerate=F/1
    ! jpegenc ! rtpjpegpay name=pay0 pt=26 )

The source is not live: gst-rtsp-server prerolls the first frame and the
RTP sinks pace the rest by the clock from PLAY on, so a client sees exactly
N frames at F per second (a live one runs during preroll, before anyone
plays: with is-live=true ffmpeg got 59 of 60). `--frames 0` streams
without end.

Each client gets its own pipeline (the factory is not shared), as each of
our server's sessions reads its own file. `--shared` shares one.

With `--user` and `--password` every request needs Digest authentication
(RFC 2617, as gst-rtsp-server does it); an authenticated user may open
and build the media.

`--launch` replaces the whole pipeline description (it must still name
its payloader pay0), e.g. pre-encoded frames with no encoder (videorate
stamps them: multifilesrc stamps only the first, and unstamped frames go
out as fast as they are read):
  ( multifilesrc location=f%05d.jpg loop=true caps=image/jpeg,framerate=30/1
    ! jpegparse ! videorate ! image/jpeg,framerate=30/1
    ! rtpjpegpay name=pay0 pt=26 )

Usage: gst_rtsp_server.py [--port P] [--size WxH] [--fps F] [--frames N]
         [--pattern ball|smpte|...] [--user U --password PW] [--path /test]
         [--shared] [--launch DESC]
It binds 127.0.0.1 only. PORT 0 (the default) picks a free port. The first
stdout line is the bound port number; nothing else goes to stdout. Runs
until killed (SIGTERM/SIGINT).
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--size", default="640x480")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--frames", type=int, default=0, help="0: endless")
    p.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--path", default="/test")
    p.add_argument("--shared", action="store_true")
    p.add_argument("--launch")
    return p.parse_args()


def launch_line(a):
    if a.launch:
        return a.launch
    w, h = a.size.split("x")
    count = f" num-buffers={a.frames}" if a.frames > 0 else ""
    return (
        f"( videotestsrc{count} pattern={a.pattern}"
        f" ! video/x-raw,format=I420,width={w},height={h},framerate={a.fps}/1"
        f" ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
    )


def digest_auth(user, password):
    """Digest only: a request without valid credentials gets 401."""
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_digest(user, password, token)
    return auth


def main():
    a = parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(a))
    factory.set_shared(a.shared)
    if a.user is not None:
        server.set_auth(digest_auth(a.user, a.password or ""))
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(
            "user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True
        )
        perms.add_permission_for_role(
            "user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True
        )
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(a.path, factory)

    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{a.port}")
    print(server.get_bound_port(), flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
