#!/usr/bin/env bash
# Installs what building and testing Charla needs, skipping whatever is already there:
#   the wasm32 target, trunk 0.21.14, wasm-bindgen-cli at Cargo.lock's wasm-bindgen version,
#   wasm-opt (npm binaryen@132.0.0, in the git-ignored .tools/), brotli (Debian's, to
#   precompress the page), redis-server (Debian's; the multi-node tests start their own on a
#   free port), and with --browser Chromium
#   and chromedriver (Debian packages) and axe-core (npm, in .tools/axe) for the e2e tests. Safe to run again: a second run installs nothing.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CHARLA_ROOT"

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
AXE_VERSION=4.10.3
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # With recommends: Chromium's fonts come that way, and screenshots need them.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (about 5 minutes, once)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly (Cargo.lock); it also brings
# wasm-bindgen-test-runner, the runner for the browser tests. (--locked fails on this registry.)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Debian's binaryen (108) builds a page that stays blank; Trunk.toml pins version_132.
if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) into .tools/binaryen"
  mkdir -p .tools/binaryen
  npm install --prefix .tools/binaryen --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi

# The page's files are precompressed after each build (scripts/precompress.sh).
if ! command -v brotli >/dev/null; then
  apt_install brotli
fi

# Several nodes as one run on Redis (backend --redis); the tests start their own redis-server.
if ! command -v redis-server >/dev/null; then
  apt_install redis-server
fi

if [ "${1:-}" = "--browser" ]; then
  if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    apt_install chromium chromium-driver
  fi
  # axe-core: the e2e tests inject it into the page and fail on any accessibility violation.
  if [ ! -f ".tools/axe/node_modules/axe-core/axe.min.js" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing axe-core $AXE_VERSION into .tools/axe"
    mkdir -p .tools/axe
    npm install --prefix .tools/axe --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
  fi
fi
say "tools ready: $(trunk --version), $(wasm-bindgen --version), $(wasm-opt --version | head -n 1)"
