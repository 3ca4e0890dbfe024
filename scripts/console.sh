#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): builds the operator's console (frontend/console.html,
# the `console` binary: a third wasm) into `console/` of the page's staging directory, so
# one `trunk build --release --offline` builds every app and neither the chat nor the
# exercises download any of it. Like scripts/exercises.sh, the nested build reads the same
# Trunk.toml, precompresses its own files, and skips this hook.
set -euo pipefail
[ -n "${CHARLA_NESTED_BUILD:-}" ] && exit 0
cd "$(dirname "$0")/.."
staging="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
release=()
[ "${TRUNK_PROFILE:-debug}" = release ] && release=(--release)
CHARLA_NESTED_BUILD=1 trunk build frontend/console.html "${release[@]}" --offline \
  --dist "$staging/console" --public-url /console/
