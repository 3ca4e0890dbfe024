# Sourced by the other scripts: puts the project's tools on PATH.
# shellcheck shell=bash
CHARLA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CHARLA_ROOT
export PATH="$CHARLA_ROOT/.tools/binaryen/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
