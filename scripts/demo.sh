#!/usr/bin/env bash
# The main job on local defaults: set up, build, start a local broker (unless
# KAFKA_BOOTSTRAP_SERVERS names one), create the topics, run the three consumers, replay
# recordings/btc.jsonl into Kafka at 10x, then show what came out. The consumers serve the
# dashboard (DASHBOARD_PORT, default 8080) with the replay's control buttons (CONTROL_PORT,
# default 9100); on a terminal the demo keeps it up until Enter or Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDING="${1:-recordings/btc.jsonl}"
SPEED="${SPEED:-10x}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8080}"
CONTROL_PORT="${CONTROL_PORT:-9100}"
scripts/setup.sh
echo "[demo] building (release; the first build takes several minutes)" >&2
swift build -c release >/dev/null
BIN="$(swift build -c release --show-bin-path)"

started_broker=""
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && ! grep -qs '^KAFKA_BOOTSTRAP_SERVERS=' .env; then
  if ! scripts/broker.sh status >/dev/null 2>&1; then
    scripts/broker.sh start >/dev/null
    started_broker=1
  fi
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$(cat .deps/run/tansu.port)"
fi
echo "[demo] Kafka at ${KAFKA_BOOTSTRAP_SERVERS:-(.env)}" >&2
mkdir -p .deps/run
consumers_pid=""
cleanup() {
  [ -n "$consumers_pid" ] && kill -TERM "$consumers_pid" 2>/dev/null && wait "$consumers_pid" 2>/dev/null || true
  [ -n "$started_broker" ] && scripts/broker.sh stop || true
}
trap cleanup EXIT

"$BIN/pipeline" ensure-topics
"$BIN/pipeline" consumers --data-dir data --window 10 --hop 5 --alerts '*:change:0.05' \
  --dashboard-port "$DASHBOARD_PORT" --replay-control "http://127.0.0.1:$CONTROL_PORT" >.deps/run/consumers.log 2>&1 &
consumers_pid=$!
echo "[demo] dashboard: http://127.0.0.1:$DASHBOARD_PORT/" >&2
"$BIN/replay" "$RECORDING" --speed "$SPEED" --control-port "$CONTROL_PORT"
sleep 3
echo
echo "[demo] the last aggregated-metrics messages:"
LD_LIBRARY_PATH="$PWD/.deps/lib" kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -C -t aggregated-metrics -o -3 -e -q 2>/dev/null | tail -n 3 || true
echo "[demo] price-alerts so far: $(LD_LIBRARY_PATH="$PWD/.deps/lib" kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -C -t price-alerts -e -q 2>/dev/null | wc -l)"
echo "[demo] stored files under data/: $(find data -name '*.jsonl*' | wc -l), records: $(find data -name '*.jsonl' -exec cat {} + | wc -l)"
echo "[demo] consumer log: .deps/run/consumers.log"
if [ -t 0 ]; then
  echo "[demo] the dashboard stays up at http://127.0.0.1:$DASHBOARD_PORT/ — press Enter (or Ctrl-C) to stop" >&2
  read -r _ || true
fi
