#!/usr/bin/env bash
# Runs every `charla bench` scenario against a release server on one core, the load generator
# on the other (taskset), with the server's limits raised by flags so they measure the server,
# not its rate limits. Prints each table and writes target/bench/<scenario>.json.
# docs/BENCHMARKS.md explains how to read them and keeps the latest table.
#
#   scripts/bench.sh            # every scenario (about 5 minutes)
#   scripts/bench.sh idle       # one of: idle, fanout, sse, latency, storm, cluster, console, page
#
# `page` builds the page and runs the page-weight e2e test (headless Chromium, a throttled
# phone: CPU 4x, 1.6 Mbit/s, 150 ms), which prints what each visit transfers and when the
# history paints.
#
# `cluster` runs fanout on Redis (backend --redis): one node, then two nodes with the clients
# spread over both; the nodes and redis-server share the server's core, and the CPU figures
# add up all of them.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CHARLA_ROOT"
only="${1:-all}"
if [ "$only" = page ]; then
  scripts/setup.sh --browser
  trunk build --release --offline
  exec cargo test --locked -p e2e --test page_weight -- --nocapture --test-threads 1
fi
PORT=3901
OUT=target/bench
mkdir -p "$OUT"
cargo build --release --locked -p backend -p client --bin backend --bin charla
ulimit -n "$(ulimit -Hn)"
cores=$(nproc)
server_core=0
bench_core=$(( cores > 1 ? 1 : 0 ))
LIMITS=(--send-rate 1000000 --send-burst 1000000 --ip-send-rate 1000000 --ip-send-burst 1000000
  --max-lines-per-sec 10000000 --frame-rate 1000000 --new-sessions-per-min 10000000 --resumes-per-min 10000000
  --max-connections 100000 --max-connections-per-ip 100000 --max-tcp-per-ip 100000)
pid=""
start_server() { # $@: extra flags
  stop_server
  taskset -c "$server_core" target/release/backend --addr "127.0.0.1:$PORT" "${LIMITS[@]}" "$@" \
    >"$OUT/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start; see $OUT/server.log" >&2
  exit 1
}
stop_server() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
trap stop_server EXIT
bench() { # $1: name of the JSON file; then the scenario and its flags
  local name=$1; shift
  taskset -c "$bench_core" target/release/charla bench --addr "127.0.0.1:$PORT" \
    --server-pid "$pid" --json "$OUT/$name.json" "$@"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), Linux $(uname -r)"
echo "server on core $server_core (memory store unless said), load generator on core $bench_core"
echo
if [ "$only" = all ] || [ "$only" = idle ]; then
  for n in 10000 19900; do
    start_server --memory
    bench "idle-$n" idle --clients "$n"
  done
fi
if [ "$only" = all ] || [ "$only" = fanout ]; then
  for window in 1 8; do
    start_server --memory
    bench "fanout-memory-w$window" fanout --clients 1000 --senders 10 --window "$window"
  done
  # Gated: a sender's next line waits until all 1,000 clients have its last one, so every
  # delivery is a write of its own (issue #19's workload).
  start_server --memory
  bench "fanout-memory-gated" fanout --clients 1000 --senders 10 --gated
  data=$(mktemp -d)
  start_server --data-dir "$data"
  bench "fanout-sqlite-w1" fanout --clients 1000 --senders 10 --window 1
  stop_server
  rm -rf "$data"
fi
if [ "$only" = all ] || [ "$only" = sse ]; then
  # The same fan-out with the 990 readers on the SSE fallback (the 10 senders stay on
  # WebSockets), beside the WebSocket run: deliveries/s and server CPU per delivery.
  for transport in websocket sse; do
    for pace in w8 gated; do
      flags=(--window 8)
      [ "$pace" = gated ] && flags=(--gated)
      start_server --memory
      bench "fanout-$transport-$pace" --transport "$transport" fanout --clients 1000 --senders 10 "${flags[@]}"
    done
  done
fi
if [ "$only" = all ] || [ "$only" = cluster ]; then
  stop_server
  redis_dir=$(mktemp -d)
  REDIS_PORT=3950
  taskset -c "$server_core" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$redis_dir" \
    --appendonly yes --appendfsync always --save "" --loglevel warning >"$OUT/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  node() { # $1: port
    taskset -c "$server_core" target/release/backend --addr "127.0.0.1:$1" "${LIMITS[@]}" \
      --redis "redis://127.0.0.1:$REDIS_PORT" --data-dir "$redis_dir/node-$1" >"$OUT/node-$1.log" 2>&1 &
    echo $!
  }
  wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
  for nodes in 1 2; do
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    a=$(node 3902); wait_up 3902
    also=(); pids=(--server-pid "$a" --server-pid "$redis_pid")
    if [ "$nodes" = 2 ]; then
      b=$(node 3903); wait_up 3903
      also=(--also-addr 127.0.0.1:3903); pids+=(--server-pid "$b")
    fi
    taskset -c "$bench_core" target/release/charla bench --addr 127.0.0.1:3902 "${also[@]}" \
      "${pids[@]}" --json "$OUT/fanout-redis-$nodes-node.json" \
      fanout --clients 1000 --senders 10 --window 1
    kill "$a" ${b:-} 2>/dev/null || true; wait "$a" ${b:-} 2>/dev/null || true; b=""
  done
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
  rm -rf "$redis_dir"
fi
if [ "$only" = all ] || [ "$only" = console ]; then
  # The operator's console's cost to the fan-out: the same fanout (window 1) with no console
  # open and with one open (its stats stream read by curl), alternating, ROUNDS (3) of each. With
  # BASELINE_BACKEND=<a backend binary from before the console>, that binary runs too.
  binaries=(target/release/backend)
  [ -n "${BASELINE_BACKEND:-}" ] && binaries+=("$BASELINE_BACKEND")
  for round in $(seq "${ROUNDS:-3}"); do
    for binary in "${binaries[@]}"; do
      for console in closed open; do
        [ "$binary" != target/release/backend ] && [ "$console" = open ] && continue
        stop_server
        taskset -c "$server_core" "$binary" --addr "127.0.0.1:$PORT" "${LIMITS[@]}" --memory \
          --api-key bench-key >"$OUT/server.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
        watcher=""
        if [ "$console" = open ]; then
          taskset -c "$bench_core" curl -sN -H "Authorization: Bearer bench-key" \
            "http://127.0.0.1:$PORT/api/admin/stats" >/dev/null &
          watcher=$!
        fi
        tag=$([ "$binary" = target/release/backend ] && echo "console-$console" || echo baseline)
        echo "== round $round: $tag"
        bench "fanout-$tag-$round" fanout --clients 1000 --senders 10 --window 1
        [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
      done
    done
  done
fi
if [ "$only" = all ] || [ "$only" = latency ]; then
  start_server --memory
  bench latency latency --clients 1000 --rate 20
fi
if [ "$only" = all ] || [ "$only" = storm ]; then
  # The tool runs the server itself (it kills it with SIGKILL and starts it again), on SQLite:
  # sessions and lines must survive the kill.
  # Twice: a room of 10 lines a second (100,000 deliveries a second once all are back), then
  # a room of 100 lines a second (1,000,000 deliveries a second: the fan-out alone keeps the
  # server's core busy while the clients come back).
  stop_server
  for every in 1000 100; do
    data=$(mktemp -d)
    taskset -c "$bench_core" target/release/charla bench --addr "127.0.0.1:$PORT" \
      --json "$OUT/storm-every-$every.json" storm --clients 10000 --send-every-ms "$every" \
      --server-cmd "taskset -c $server_core target/release/backend --addr 127.0.0.1:$PORT --data-dir $data ${LIMITS[*]} >$OUT/storm-server.log 2>&1"
    rm -rf "$data"
  done
fi
