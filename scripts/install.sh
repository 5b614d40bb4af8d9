#!/usr/bin/env bash
# Puts the commands on PATH: builds them (release by default; --debug links the debug build the
# tests use) and links replay, sim-exchange, pipeline, backtest and bench into $PREFIX/bin
# (default ~/.local/bin), and writes bash, zsh and fish completion scripts from
# swift-argument-parser next to them (share/marketstream/completions).
#
#   scripts/install.sh                  # release build, links into ~/.local/bin
#   PREFIX=/usr/local scripts/install.sh
#   scripts/install.sh --debug
#
# Afterwards `replay recordings/btc.jsonl --speed 10x` and `sim-exchange --port 9001` run as
# written, from the package folder (recordings are relative paths).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=release
[ "${1:-}" = "--debug" ] && CONFIG=debug
PREFIX="${PREFIX:-$HOME/.local}"
COMMANDS=(replay sim-exchange pipeline backtest bench)
scripts/setup.sh
echo "[install] building ($CONFIG)" >&2
swift build -c "$CONFIG" >/dev/null
BIN="$(swift build -c "$CONFIG" --show-bin-path)"
mkdir -p "$PREFIX/bin" "$PREFIX/share/marketstream/completions"
for c in "${COMMANDS[@]}"; do
  ln -sf "$BIN/$c" "$PREFIX/bin/$c"
  for shell in bash zsh fish; do
    "$BIN/$c" --generate-completion-script "$shell" > "$PREFIX/share/marketstream/completions/$c.$shell"
  done
done
echo "[install] linked ${COMMANDS[*]} into $PREFIX/bin" >&2
echo "[install] completions in $PREFIX/share/marketstream/completions; for bash add to ~/.bashrc:" >&2
echo "  for f in $PREFIX/share/marketstream/completions/*.bash; do source \"\$f\"; done" >&2
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "[install] $PREFIX/bin is not on PATH; add: export PATH=\"$PREFIX/bin:\$PATH\"" >&2 ;;
esac
