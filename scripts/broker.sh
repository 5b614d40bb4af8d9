#!/usr/bin/env bash
# Start, stop or check a local Tansu broker on 127.0.0.1.
#   scripts/broker.sh start [PORT]   (PORT defaults to $BROKER_PORT, then 9092; 0 = any free port)
#   scripts/broker.sh stop | status
# Prints the bootstrap address on start; exits non-zero with a reason when the broker is not ready.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.deps/run"; mkdir -p "$STATE"
TANSU="${TANSU_BIN:-$ROOT/.deps/bin/tansu}"
pidfile="$STATE/tansu.pid"; portfile="$STATE/tansu.port"; log="$STATE/tansu.log"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-status}" in
  start)
    if running; then echo "127.0.0.1:$(cat "$portfile")"; exit 0; fi
    [ -x "$TANSU" ] || { echo "broker: $TANSU not found; run scripts/setup.sh first" >&2; exit 1; }
    port="${2:-${BROKER_PORT:-9092}}"; [ "$port" = 0 ] && port="$(free_port)"
    if listening "$port"; then echo "broker: port $port on 127.0.0.1 is already in use" >&2; exit 1; fi
    nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" >"$log" 2>&1 &
    echo $! >"$pidfile"; echo "$port" >"$portfile"
    for _ in $(seq 1 100); do
      if listening "$port"; then echo "127.0.0.1:$port"; exit 0; fi
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.1
    done
    echo "broker: Tansu did not become ready on 127.0.0.1:$port within 10 s; last log lines:" >&2
    tail -n 5 "$log" >&2 || true
    exit 1 ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; fi
    rm -f "$pidfile" "$portfile" ;;
  status)
    if running; then echo "running on 127.0.0.1:$(cat "$portfile") (pid $(cat "$pidfile"))"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
