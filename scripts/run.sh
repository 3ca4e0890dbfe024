#!/usr/bin/env bash
# Builds the page and the server, then runs Charla at http://127.0.0.1:3000.
# Extra arguments go to the server (scripts/run.sh --help lists them).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CHARLA_ROOT"
scripts/setup.sh
trunk build --release --offline
cargo build --release -p backend
exec target/release/backend "$@"
