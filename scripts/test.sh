#!/usr/bin/env bash
# Runs every check and test Charla has, installing what they need first (scripts/setup.sh):
# format, lints, the protocol and server tests, the page's component tests in headless
# Chromium, the page build, and the end-to-end browser test.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CHARLA_ROOT"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "tools"
scripts/setup.sh --browser

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (clippy, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "protocol and server tests (shared, backend)"
cargo test --locked

step "page unit tests (native: translations complete, language tags)"
cargo test --locked -p frontend --lib

step "page component tests (wasm-bindgen-test, headless Chromium)"
cargo test --locked -p frontend --target wasm32-unknown-unknown

step "page build (trunk)"
trunk build --release --offline

step "end to end (WebDriver, headless Chromium, real backend)"
cargo test --locked -p e2e

step "all tests passed"
