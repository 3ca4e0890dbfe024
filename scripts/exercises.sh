#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): builds the exercises' app (frontend/exercises.html,
# the `exercises` binary: a second wasm) into `exercises/` of the page's staging directory,
# so one `trunk build --release --offline` builds both apps and the chat's first visit
# downloads none of the exercises (trunk 0.21 cannot split one wasm). The nested build reads
# the same Trunk.toml, so it precompresses its own files, and skips this hook.
set -euo pipefail
[ -n "${CHARLA_NESTED_BUILD:-}" ] && exit 0
cd "$(dirname "$0")/.."
staging="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
release=()
[ "${TRUNK_PROFILE:-debug}" = release ] && release=(--release)
CHARLA_NESTED_BUILD=1 trunk build frontend/exercises.html "${release[@]}" --offline \
  --dist "$staging/exercises" --public-url /exercises/
