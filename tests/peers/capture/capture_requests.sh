#!/bin/sh
# Capture the RTSP requests real clients send, byte-exact, into
# tests/fixtures/requests/<peer>_<METHOD>.txt, using rtsp_capture_server.py
# on 127.0.0.1 (one server per peer). Raw per-connection logs (received and
# sent bytes, interleaved RTCP included) go to $LOG_DIR.
#
# Run from the crate root, after capture_rtp.sh (the server replays
# tests/fixtures/rtp/gst_320x240_i420):
#     sh tests/peers/capture/capture_requests.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-tests/fixtures/requests}
LOG_DIR=${LOG_DIR:-/tmp/streamlab-rtsp-capture}
PORT=${PORT:-18554}
URL="rtsp://127.0.0.1:$PORT/movie.Mjpeg"
mkdir -p "$OUT" "$LOG_DIR"

# run PEER [server options] -- CLIENT COMMAND...   (logs to $LOGS)
LOGS=$LOG_DIR
run() {
    peer=$1; shift
    sopts=""
    while [ "$1" != "--" ]; do sopts="$sopts $1"; shift; done
    shift
    mkdir -p "$LOGS"
    rm -f "$LOGS/ready"
    # shellcheck disable=SC2086
    python3 "$HERE/rtsp_capture_server.py" --port "$PORT" --peer "$peer" \
        --out "$OUT" --log-dir "$LOGS" --ready-file "$LOGS/ready" \
        --max-connections 1 --lifetime 30 $sopts &
    spid=$!
    while [ ! -e "$LOGS/ready" ]; do sleep 0.05; done
    echo "== $peer: $*" >&2
    "$@" >"$LOGS/$peer.client.log" 2>&1
    echo "   client exit $?" >&2
    wait "$spid"
}

run ffprobe_udp -- ffprobe -v error -rtsp_transport udp "$URL"
run ffmpeg_udp -- ffmpeg -nostdin -timeout 3000000 -i "$URL" -frames:v 1 -f null -
run ffmpeg_tcp -- ffmpeg -nostdin -rtsp_transport tcp -timeout 3000000 -i "$URL" -frames:v 1 -f null -
run gstreamer_udp -- timeout -s INT 10 gst-launch-1.0 -e rtspsrc location="$URL" protocols=udp ! fakesink
run gstreamer_tcp -- timeout -s INT 10 gst-launch-1.0 -e rtspsrc location="$URL" protocols=tcp ! fakesink
run opencv -- python3 -c "import cv2; c=cv2.VideoCapture('$URL', cv2.CAP_FFMPEG); print(c.read()[0])"

# Keep-alives: with Session timeout=6 the clients send GET_PARAMETER within
# the run; only that request is saved from these runs. (GStreamer over TCP
# sends none: it keeps the session alive with interleaved RTCP instead.)
LOGS=$LOG_DIR/keepalive
run ffmpeg_udp --timeout 6 --only GET_PARAMETER -- ffmpeg -nostdin -timeout 3000000 -i "$URL" -t 5 -f null -
run ffmpeg_tcp --timeout 6 --only GET_PARAMETER -- ffmpeg -nostdin -rtsp_transport tcp -timeout 3000000 -i "$URL" -t 5 -f null -
run gstreamer_udp --timeout 6 --only GET_PARAMETER -- timeout -s INT 10 gst-launch-1.0 -e rtspsrc location="$URL" protocols=udp ! fakesink
run gstreamer_tcp --timeout 6 --only GET_PARAMETER -- timeout -s INT 10 gst-launch-1.0 -e rtspsrc location="$URL" protocols=tcp ! fakesink

# Everything each TCP client sent on its connection, requests and
# interleaved RTCP ($ frames) together, byte-exact.
for peer in ffmpeg_tcp gstreamer_tcp opencv; do
    cp "$LOG_DIR/${peer}_conn1.raw" "$OUT/${peer}_session.bin"
done

ls -l "$OUT"
