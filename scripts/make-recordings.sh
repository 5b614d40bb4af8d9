#!/usr/bin/env bash
# Regenerates recordings/btc.jsonl and recordings/aapl.jsonl with the project's own sim-exchange + recorder.
# Each is a real-time capture over a real WebSocket: sim-exchange (fixed --seed and --start-time, so the
# frame contents are the same every run) is recorded by `replay record` for DURATION seconds (default 180).
# Both captures run in parallel, so the script takes about DURATION seconds. recv_ns are the wall-clock
# receive times of this run, so files differ between runs only in recv_ns and the header's start_ns.
#   scripts/make-recordings.sh            # uses .build/debug (builds it if missing)
#   BIN=.build/release DURATION=240 scripts/make-recordings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug}
DURATION=${DURATION:-180}
if [[ ! -x $BIN/replay || ! -x $BIN/sim-exchange ]]; then
  swift build --product replay && swift build --product sim-exchange
fi
mkdir -p recordings
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

record() { # name port symbol rate seed start_ms
  local name=$1 port=$2 symbol=$3 rate=$4 seed=$5 start=$6
  "$BIN/sim-exchange" --port "$port" --seed "$seed" --start-time "$start" --rate "$rate" \
    --ping-interval 10 --frame-interval-ms 100 --max-trades-per-frame 100 --log-level warning &
  pids+=($!)
  sleep 1
  "$BIN/replay" record --url "ws://127.0.0.1:$port/?token=recording" --symbols "$symbol" \
    --out "recordings/$name.jsonl" --overwrite --duration "$DURATION" &
  pids+=($!)
}

# 2024-11-25 14:30:00 UTC (Monday, US market open)
record btc 19101 BINANCE:BTCUSDT 40 7 1732545000000
record aapl 19102 AAPL 15 11 1732545000000
wait "${pids[1]}" "${pids[3]}"
ls -l recordings/btc.jsonl recordings/aapl.jsonl
