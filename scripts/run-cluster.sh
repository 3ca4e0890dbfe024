#!/usr/bin/env bash
# Several servers as one, on this machine: starts a Redis of its own (127.0.0.1:6380, its
# append-only file in data/redis, `appendfsync always`) and two Charla nodes sharing it, at
# http://127.0.0.1:3001 and http://127.0.0.1:3002. Open one in each browser window: one chat,
# the same rooms, lines, typing and presence. Stop a node (kill its pid, printed below) and
# its pages carry on when pointed at the other; Ctrl-C stops everything.
#
# Ports and the number of nodes can be changed:
#   CHARLA_REDIS_PORT=6390 CHARLA_NODES=3 scripts/run-cluster.sh   # nodes on 3001..3003
# Extra arguments go to every node (scripts/run.sh --help lists them).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CHARLA_ROOT"
scripts/setup.sh
trunk build --release --offline
cargo build --release -p backend

REDIS_PORT=${CHARLA_REDIS_PORT:-6380}
NODES=${CHARLA_NODES:-2}
mkdir -p data/redis
pids=()
stop() {
  trap - EXIT INT TERM
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$CHARLA_ROOT/data/redis" \
  --appendonly yes --appendfsync always --save "" --loglevel warning &
pids+=($!)
for _ in $(seq 100); do
  if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then break; fi
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { echo "redis-server did not start" >&2; exit 1; }
echo "[cluster] redis on 127.0.0.1:$REDIS_PORT (pid ${pids[0]})"

for n in $(seq "$NODES"); do
  port=$((3000 + n))
  target/release/backend --addr "127.0.0.1:$port" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --data-dir "data/node$n" "$@" &
  pids+=($!)
  echo "[cluster] node $n on http://127.0.0.1:$port (pid $!)"
done
# Runs until Ctrl-C: a node killed to try a failover leaves the others running.
wait
