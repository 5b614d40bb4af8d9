#!/usr/bin/env bash
# Sets up this machine (idempotent) and runs every test. The tests start their own Tansu
# broker on a free port and their own sim-exchange servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
swift build --build-tests
swift test --no-parallel "$@"
