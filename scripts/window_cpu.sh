#!/usr/bin/env bash
# The player window's CPU while playing a 720p30 stream and while paused,
# beside `streamlab probe` (the same engine, no window) on the same stream
# in the same run as the reference. Runs the window under Xvfb (software
# OpenGL): a desktop with a GPU spends less on drawing.
#
#   scripts/window_cpu.sh [target/release/streamlab] [SECONDS]
#
# Needs xvfb and xdotool. Everything stays on 127.0.0.1 and the display :97.
set -euo pipefail
BIN=${1:-target/release/streamlab}
SECS=${2:-20}
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 10000))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# CPU seconds (user + system) a process has used so far.
cpu() { awk '{ print ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
# Percent of one core process $1 uses over $SECS seconds.
measure() {
  local a b
  a=$(cpu "$1"); sleep "$SECS"; b=$(cpu "$1")
  awk -v a="$a" -v b="$b" -v s="$SECS" 'BEGIN { printf "%.1f", (b - a) * 100 / s }'
}

"$BIN" make-clip "$WORK/clip720.mjpeg" --frames 300 --size 1280x720 --quality 80 >/dev/null
"$BIN" serve "$PORT" --bind 127.0.0.1 --root "$WORK" --fps 30 --loop >/dev/null 2>&1 &
pids+=($!)
URL="rtsp://127.0.0.1:$PORT/clip720.mjpeg"
sleep 1

# The reference: the engine alone, decoding every frame.
"$BIN" probe "$URL" --seconds $((SECS + 5)) --json >"$WORK/probe.json" &
probe=$!
pids+=($probe)
sleep 5
probe_cpu=$(measure "$probe")
wait "$probe" || true

Xvfb :97 -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
env -u WAYLAND_DISPLAY DISPLAY=:97 HOME="$WORK" "$BIN" play "$URL" --autoplay >/dev/null 2>&1 &
window=$!
pids+=($window)
sleep 5
playing=$(measure "$window")
win=$(DISPLAY=:97 xdotool search --name Streamlab | head -1)
DISPLAY=:97 xdotool windowfocus "$win" key space
sleep 3
paused=$(measure "$window")

echo "720p30, ${SECS} s each, % of one core:"
echo "  streamlab probe (engine only, reference): $probe_cpu"
echo "  window playing:                           $playing"
echo "  window paused:                            $paused"
awk -v w="$playing" -v p="$probe_cpu" 'BEGIN { if (p > 0) printf "  window playing / probe: %.2f\n", w / p }'
