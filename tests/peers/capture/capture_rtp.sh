#!/bin/sh
# Capture RTP/JPEG (RFC 2435) packets from GStreamer's rtpjpegpay, byte-exact,
# into tests/fixtures/rtp/<name>/NNNN.bin, plus the JPEG frames the payloader
# was fed (tests/fixtures/rtp/<name>/source_<n>.jpg). Loopback only.
#
# Run from the crate root:  sh tests/peers/capture/capture_rtp.sh [NAME...]
# (no NAME: every set).
# Needs: gstreamer1.0-tools, -plugins-base, -plugins-good, libjpeg-turbo-progs,
# ffmpeg, python3.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-tests/fixtures/rtp}
PORT=${PORT:-5600}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# capture NAME SOURCE_PIPELINE : start the receiver, run
# "SOURCE_PIPELINE ! rtpjpegpay ! udpsink host=127.0.0.1 port=$PORT".
capture() {
    name=$1; shift
    rm -rf "$OUT/$name"; mkdir -p "$OUT/$name"
    rm -f "$TMP/ready"
    python3 "$HERE/rtp_receiver.py" --port "$PORT" --out "$OUT/$name" \
        --ready-file "$TMP/ready" --idle 1.5 &
    rpid=$!
    while [ ! -e "$TMP/ready" ]; do sleep 0.05; done
    # shellcheck disable=SC2086
    gst-launch-1.0 -q $* ! rtpjpegpay ! udpsink host=127.0.0.1 port="$PORT"
    wait "$rpid"
}

# want NAME : whether NAME was asked for (or nothing was).
ALL="$*"
want() { [ -z "$ALL" ] || case " $ALL " in *" $1 "*) true ;; *) false ;; esac; }

# save_sources NAME SOURCE_PIPELINE : the same JPEGs to source_<n>.jpg.
save_sources() {
    name=$1; shift
    # shellcheck disable=SC2086
    gst-launch-1.0 -q $* ! multifilesink location="$OUT/$name/source_%d.jpg"
}

# 1. jpegenc 4:2:0, 320x240, small frames (two packets each at MTU 1400).
P1="videotestsrc num-buffers=5 pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! jpegenc"
if want gst_320x240_i420; then
    capture gst_320x240_i420 "$P1"
    save_sources gst_320x240_i420 "$P1"
fi

# 2. jpegenc 4:2:2 (RFC 2435 type 0), 320x240, smpte bars.
P2="videotestsrc num-buffers=3 pattern=smpte ! video/x-raw,format=Y42B,width=320,height=240,framerate=25/1 ! jpegenc"
if want gst_320x240_y42b; then
    capture gst_320x240_y42b "$P2"
    save_sources gst_320x240_y42b "$P2"
fi

# 3. 1920x1080 4:2:0: many fragments per frame.
P3="videotestsrc num-buffers=2 pattern=smpte ! video/x-raw,format=I420,width=1920,height=1080,framerate=25/1 ! jpegenc"
if want gst_1920x1080_i420; then
    capture gst_1920x1080_i420 "$P3"
    save_sources gst_1920x1080_i420 "$P3"
fi

# 4. Restart markers: jpegenc has no restart-interval property, so cjpeg
#    (libjpeg-turbo) makes the JPEGs (DRI = one MCU row) from ffmpeg testsrc
#    frames, and multifilesrc ! jpegparse feeds them to rtpjpegpay.
#    multifilesrc stamps only the first buffer (later PTS are none, and
#    rtpjpegpay then gives all frames one RTP timestamp): videorate fills
#    them in at 25 fps.
if want cjpeg_restart_320x240; then
    rm -rf "$OUT/cjpeg_restart_320x240"
    mkdir -p "$TMP/rst"
    ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -frames:v 3 "$TMP/rst/f%d.ppm"
    for i in 0 1 2; do
        cjpeg -quality 85 -sample 2x2 -restart 1 -outfile "$TMP/rst/source_$i.jpg" "$TMP/rst/f$((i + 1)).ppm"
    done
    P4="multifilesrc location=$TMP/rst/source_%d.jpg index=0 stop-index=2 caps=image/jpeg,framerate=25/1 ! jpegparse ! videorate ! image/jpeg,framerate=25/1"
    capture cjpeg_restart_320x240 "$P4"
    cp "$TMP/rst"/source_*.jpg "$OUT/cjpeg_restart_320x240/"
fi

# 5. Wider than 2040 px: the width field cannot say it (RFC 2435 3.1.5).
P5="videotestsrc num-buffers=2 pattern=smpte ! video/x-raw,format=I420,width=2560,height=128,framerate=25/1 ! jpegenc"
if want gst_2560x128_i420; then
    capture gst_2560x128_i420 "$P5"
    save_sources gst_2560x128_i420 "$P5"
fi

# 6. ffmpeg's RTP muxer (rtpenc_jpeg) as a second sender, same format.
#    ffmpeg's mjpeg encoder defaults to optimal Huffman tables, which RFC
#    2435 cannot carry: with the default ffmpeg logs "RFC 2435 requires
#    standard Huffman tables for jpeg" and sends nothing, hence
#    -huffman default. It also writes one quantisation table for both luma
#    and chroma ("RFC 2435 suggests two quantization tables, 1 provided"),
#    so its in-band table length is 64, not 128.
FF="-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 3 -c:v mjpeg -pix_fmt yuvj420p -huffman default"
if want ffmpeg_320x240_yuvj420p; then
    name=ffmpeg_320x240_yuvj420p
    rm -rf "$OUT/$name"; mkdir -p "$OUT/$name"
    rm -f "$TMP/ready"
    python3 "$HERE/rtp_receiver.py" --port "$PORT" --out "$OUT/$name" \
        --ready-file "$TMP/ready" --idle 1.5 &
    rpid=$!
    while [ ! -e "$TMP/ready" ]; do sleep 0.05; done
    # shellcheck disable=SC2086
    ffmpeg -v error -nostdin -re $FF -f rtp "rtp://127.0.0.1:$PORT" >/dev/null
    wait "$rpid"
    # shellcheck disable=SC2086
    ffmpeg -v error -nostdin $FF -f image2 -start_number 0 "$OUT/$name/source_%d.jpg"
fi

du -sh "$OUT"/*
