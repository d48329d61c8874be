#!/usr/bin/env bash
# make bench: a short run of every `roomd bench` scenario, each against a
# fresh roomd built from this tree (measured through --pid), then the Go
# micro-benchmarks: about a minute on a 2-core machine. docs/BENCHMARKS.md has the
# longer runs and how to take them.
#
# Environment: GO (go), BENCHTIME (the micro-benchmarks' -benchtime, 300ms),
# BENCH_SCENARIOS (the scenarios to run, "floor fanout deflate overload chat connect sse sseidle"),
# BENCH_ARGS (extra flags for every roomd bench run).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BENCHTIME=${BENCHTIME:-300ms}
SCENARIOS=${BENCH_SCENARIOS:-floor fanout deflate overload chat connect sse sseidle}
read -r -a EXTRA <<<"${BENCH_ARGS:-}"

"$GO" build -o bin/roomd ./cmd/roomd

tmp=$(mktemp -d)
pid=""
stop_server() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# start_server runs roomd on a free loopback port, with per-connection rate
# limits raised so that a bench publisher is never the one throttled (and the
# per-address limits, since every bench connection comes from one address), and
# sets pid and url.
start_server() {
  bin/roomd --addr 127.0.0.1:0 --log-format json \
    --frame-rate 100000 --frame-burst 200000 --byte-rate 64MiB \
    --max-pending-per-addr 100000 --conn-rate-per-addr 100000 "$@" 2>"$tmp/roomd.log" &
  pid=$!
  local addr=""
  for _ in $(seq 100); do
    addr=$(grep '"msg":"listening"' "$tmp/roomd.log" 2>/dev/null | head -n1 | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' || true)
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "roomd did not start:" >&2
      cat "$tmp/roomd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "roomd logged no listening address in 10 s:" >&2
    cat "$tmp/roomd.log" >&2
    exit 1
  fi
  url="http://$addr"
}

# bench runs one scenario against a fresh server, started with the flags in
# the array server_args (none unless set).
server_args=()
bench() {
  local name=$1
  shift
  echo
  start_server "${server_args[@]}"
  if ! bin/roomd bench --scenario "$name" --url "$url" --pid "$pid" "$@" "${EXTRA[@]}"; then
    echo "(roomd bench --scenario $name failed)"
    status=1
  fi
  stop_server
}

status=0
echo "== roomd bench: short runs, $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
for s in $SCENARIOS; do
  case $s in
  floor)
    # No server: what the kernel alone costs per delivery here, under the
    # fan-out run that follows (the same room, rate and size).
    echo
    if ! bin/roomd bench --scenario floor --rooms 1 --subs 500 --rate 200 --duration 5s --warmup 1s "${EXTRA[@]}"; then
      echo "(roomd bench --scenario floor failed)"
      status=1
    fi
    ;;
  fanout) bench fanout --rooms 1 --subs 500 --rate 200 --duration 5s --warmup 1s ;;
  overload)
    # 3 publishers offer 900 msg/s of 4 KB to a room that accepts 300 (the
    # rest: err 5); a tenth of the subscribers never read, and are cut once
    # the kernel holds its ~4 MiB for each and their queue is full.
    server_args=(--room-publish-rate 300)
    bench fanout --rooms 1 --subs 500 --pubs 3 --rate 900 --size 4000 --non-readers 10 --duration 8s --warmup 1s --drain 2s
    server_args=()
    ;;
  chat) bench chat --rooms 100 --subs 5 --rate 500 --duration 5s --warmup 1s ;;
  deflate)
    # The fan-out run with chat text, compressed (permessage-deflate):
    # compare its CPU per delivery and bytes out with a run without --deflate.
    server_args=(--compression)
    bench fanout --rooms 1 --subs 500 --rate 200 --size 300 --payload-text --deflate --duration 5s --warmup 1s
    server_args=()
    ;;
  connect) bench connect --conns 3000 --rooms 30 --duration 3s ;;
  sse) bench sse --observers 300 --rooms 1 --rate 50 --duration 5s --warmup 1s ;;
  sseidle) bench sseidle --observers 2000 --rooms 10 --duration 4s ;;
  *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done

echo
echo "== Go micro-benchmarks (-benchtime $BENCHTIME)"
"$GO" test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" ./protocol/ ./room/ ./server/ ./internal/wsframe/ || status=1
exit $status
