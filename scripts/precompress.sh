#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): writes a brotli (.br) and a gzip (.gz) copy beside
# every page file in trunk's staging directory, so the server sends them precompressed to
# browsers that accept them (backend/src/http.rs). brotli comes from Debian's `brotli`
# package (scripts/setup.sh installs it); without it only the gzip copies are made.
set -euo pipefail
dir="${TRUNK_STAGING_DIR:-${1:-dist}}"
have_brotli=1
command -v brotli >/dev/null || { have_brotli=0; echo "precompress: no brotli on PATH; gzip only" >&2; }
for file in "$dir"/*.wasm "$dir"/*.js "$dir"/*.css "$dir"/*.html; do
  [ -f "$file" ] || continue
  gzip -9 -n -k -f "$file"
  if [ "$have_brotli" = 1 ]; then
    brotli -q 11 -k -f "$file"
  fi
done
