#!/usr/bin/env bash
# make bench-cluster: the cost of replication, each figure taken on two
# builds in alternated runs (A B A B ...), each run against fresh servers:
#
#   fanout  one node: 1 room × 1,000 subscribers at 100 msg/s; server CPU
#           per delivery (roomd bench --pid)
#   ack1    one node: 1,000 publishes/s over 100 rooms (one publisher and one
#           subscriber per room); publish → ok p50/p99/max
#   ack3    the same over 3 nodes on loopback, connections spread over the
#           three nodes' URLs
#   idle    3 nodes holding ROOMS rooms (one API publish each), then each
#           node's CPU over IDLE seconds of idleness, from /proc/PID/stat
#           (utime + stime); also with no room at all
#
# Usage: scripts/bench-cluster.sh [fanout|ack1|ack3|idle]...  (default: all)
#
# Environment:
#   A        the build measured (default bin/roomd, built from this tree)
#   B        the build compared against (default /tmp/roomd-base; build it
#            from another worktree with `go build -o /tmp/roomd-base ./cmd/roomd`);
#            B=none measures A alone
#   PAIRS    alternated pairs of runs per figure (3)
#   DURATION measurement window of the bench runs (10s)
#   ROOMS    rooms of the idle cluster (10000)
#   IDLE     seconds of the idle measurement (30)
#   SETTLE   seconds waited after the rooms are made, before measuring (10)
#   OUT      folder for every run's JSON and logs (a temporary one, removed)
#   PORT     first of the loopback ports used by the clusters (18180): HTTP
#            on PORT..PORT+2, gossip on PORT+10..PORT+12
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
A=${A:-bin/roomd}
B=${B:-/tmp/roomd-base}
PAIRS=${PAIRS:-3}
DURATION=${DURATION:-10s}
ROOMS=${ROOMS:-10000}
IDLE=${IDLE:-30}
SETTLE=${SETTLE:-10}
PORT=${PORT:-18180}
SCEN=("$@")
[ ${#SCEN[@]} -gt 0 ] || SCEN=(fanout ack1 ack3 idle)

if [ "$A" = bin/roomd ]; then
  "$GO" build -o bin/roomd ./cmd/roomd
fi
builds=("$A")
if [ "$B" != none ]; then
  [ -x "$B" ] || { echo "B=$B is not an executable (B=none to measure A alone)" >&2; exit 2; }
  builds+=("$B")
fi

keep=1
if [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d)
  keep=0
fi
mkdir -p "$OUT"

pids=()
# stop_all kills the nodes: nothing they hold is measured after a run, and a
# graceful stop of a cluster takes its drain's seconds.
stop_all() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  [ "$keep" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT

# Flags every node gets, those its build knows: no bench connection is ever
# the one throttled (the per-address limits came after some builds).
LIMITS=(--log-format json --frame-rate 100000 --frame-burst 200000 --byte-rate 64MiB
  --max-pending-per-addr 100000 --conn-rate-per-addr 100000)
SECRET=bench-cluster-secret-0123456789abcdef

# has_flag BIN FLAG: whether the build knows a serve flag.
# (The help is read whole first: grep -q would close the pipe early.)
has_flag() {
  local help
  help=$("$1" serve --help 2>&1 || true)
  grep -q -- "--$2\b" <<<"$help"
}

# start_nodes BIN N LOG: starts N nodes of BIN on loopback (N > 1: a cluster,
# formed before it returns) and sets pids and urls.
start_nodes() {
  local bin=$1 n=$2 log=$3 i
  urls=()
  for ((i = 0; i < n; i++)); do
    local args=(--addr "127.0.0.1:$((PORT + i))" --node-name "n$i") k
    for ((k = 0; k < ${#LIMITS[@]}; k++)); do
      if [[ ${LIMITS[k]} != --log-format && ${LIMITS[k]} == --* ]] && ! has_flag "$bin" "${LIMITS[k]#--}"; then
        k=$((k + 1)) # and its value
        continue
      fi
      args+=("${LIMITS[k]}")
    done
    if [ "$n" -gt 1 ]; then
      local seeds=() j
      for ((j = 0; j < n; j++)); do
        [ "$j" = "$i" ] || seeds+=("127.0.0.1:$((PORT + 10 + j))")
      done
      args+=(--cluster-bind "127.0.0.1:$((PORT + 10 + i))" --cluster-secret "$SECRET"
        --join "$(IFS=,; echo "${seeds[*]}")")
      if has_flag "$bin" cluster-expect; then
        args+=(--cluster-expect "$n")
      fi
    fi
    "$bin" serve "${args[@]}" 2>"$log.n$i" &
    pids+=($!)
    urls+=("http://127.0.0.1:$((PORT + i))")
  done
  # Every node up, and with a cluster every node seeing all n members.
  local deadline=$((SECONDS + 30)) u
  for u in "${urls[@]}"; do
    until curl -fsS "$u/readyz" >/dev/null 2>&1 &&
      { [ "$n" = 1 ] || [ "$(curl -fsS "$u/v1/cluster" | jq '[.members[]? | select(.state == "alive" or .state == "serving" or .state == null)] | length')" = "$n" ]; }; do
      if ((SECONDS > deadline)); then
        echo "nodes of $bin not ready in 30 s; logs in $log.n*" >&2
        tail -n 5 "$log".n* >&2
        exit 1
      fi
      sleep 0.2
    done
  done
}

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# machine_busy: busy and total jiffies of all cores, from /proc/stat.
machine_jiffies() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6; exit}' /proc/stat; }
HZ=$(getconf CLK_TCK)

label() { if [ "$1" = "$A" ]; then echo A; else echo B; fi; }

# bench_run NAME BIN NODES ARGS...: one bench run against fresh nodes; the
# JSON goes to $OUT/NAME.json.
bench_run() {
  local name=$1 bin=$2 n=$3
  shift 3
  start_nodes "$bin" "$n" "$OUT/$name.log"
  local pidflag=()
  [ "$n" = 1 ] && pidflag=(--pid "${pids[0]}")
  bin/roomd bench --json --url "$(IFS=,; echo "${urls[*]}")" "${pidflag[@]}" "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" ||
    { echo "bench $name failed:" >&2; cat "$OUT/$name.err" >&2; }
  stop_all
}

alternate() {
  local what=$1 n=$2
  shift 2
  local k bin
  for ((k = 1; k <= PAIRS; k++)); do
    for bin in "${builds[@]}"; do
      local name="$what-$(label "$bin")$k"
      bench_run "$name" "$bin" "$n" "$@"
      summarize "$what" "$name" "$bin"
    done
  done
}

summarize() {
  local what=$1 name=$2 bin=$3 f="$OUT/$2.json"
  [ -s "$f" ] || { echo "$name: no result"; return; }
  case $what in
  fanout)
    jq -r --arg n "$name" '"\($n)  delivered \(.delivered_pct|.*100|round/100) %  p99 \(.latency_ms.p99) ms  server CPU \(.server.cpu_us_per_delivery|.*100|round/100) µs/delivery, \(.server_counters.roomd_frames_out_total / .server_counters.roomd_messages_out_total|.*100|round/100) frames/write  machine: busy \(.machine.busy|.*100|round/100), server \(.machine.server|.*100|round/100), bench \(.machine.bench|.*100|round/100), others \(.machine.others|.*100|round/100) cores"' "$f"
    ;;
  *)
    jq -r --arg n "$name" '"\($n)  ok \(.acked_pct|.*100|round/100) % (\(.published) ok, \(.rejected) err, \(.unacked) unanswered)  publish→ok p50 \(.ack_latency_ms.p50) p99 \(.ack_latency_ms.p99) max \(.ack_latency_ms.max) ms  delivered \(.delivered_pct|.*100|round/100) %  machine: busy \(.machine.busy|.*100|round/100), server \(.machine.server|.*100|round/100), bench \(.machine.bench|.*100|round/100), others \(.machine.others|.*100|round/100) cores"' "$f"
    ;;
  esac
}

# idle_run NAME BIN ROOMS: a 3-node cluster holding ROOMS rooms, each node's
# CPU over IDLE seconds.
idle_run() {
  local name=$1 bin=$2 rooms=$3
  start_nodes "$bin" 3 "$OUT/$name.log"
  if [ "$rooms" -gt 0 ]; then
    local cfg="$OUT/$name.curl" i
    : >"$cfg"
    for ((i = 0; i < rooms; i++)); do
      printf 'url = "%s/v1/rooms/idle-%d/messages"\noutput = "/dev/null"\n' "${urls[$((i % 3))]}" "$i" >>"$cfg"
    done
    curl -sS -Z --parallel-max 16 -X POST -H 'Content-Type: application/json' \
      -d '{"data":"x"}' -w '%{http_code}\n' -K "$cfg" >"$OUT/$name.codes" 2>"$OUT/$name.curl.err" || true
    local ok
    ok=$(grep -c '^200$' "$OUT/$name.codes" || true)
    if [ "$ok" != "$rooms" ]; then
      echo "$name: $ok of $rooms publishes answered 200 ($(sort "$OUT/$name.codes" | uniq -c | sort -rn | head -n 3 | tr '\n' ' '))" >&2
    fi
  fi
  sleep "$SETTLE"
  local t0=() p
  for p in "${pids[@]}"; do t0+=("$(cpu_ticks "$p")"); done
  read -r mb0 mt0 < <(machine_jiffies)
  sleep "$IDLE"
  read -r mb1 mt1 < <(machine_jiffies)
  local line="$name  rooms $rooms  CPU % of a core per node over ${IDLE} s:" k=0
  for p in "${pids[@]}"; do
    local t1
    t1=$(cpu_ticks "$p")
    line+=" $(awk -v d=$((t1 - t0[k])) -v hz="$HZ" -v s="$IDLE" 'BEGIN{printf "%.2f", 100 * d / hz / s}')"
    k=$((k + 1))
  done
  local held=""
  held=$(curl -fsS "${urls[0]}/v1/cluster" 2>/dev/null | jq '[.members[].rooms // 0] | add' || true)
  line+="  machine busy $(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) -v c="$(nproc)" 'BEGIN{printf "%.2f", c * b / t}') of $(nproc) cores"
  [ -n "$held" ] && line+="  (rooms held, from /v1/cluster: $held)"
  echo "$line" | tee "$OUT/$name.txt"
  stop_all
}

echo "== bench-cluster: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1), A=$A${B:+ B=$B}, $PAIRS pairs, $(date -u +%FT%TZ)"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${SCEN[@]}"; do
  echo
  case $s in
  fanout)
    echo "-- fanout: one node, 1 room × 1,000 subscribers, 100 msg/s"
    alternate fanout 1 --scenario fanout --rooms 1 --subs 1000 --rate 100 --duration "$DURATION" --warmup 2s
    ;;
  ack1)
    echo "-- ack1: one node, 1,000 publishes/s over 100 rooms"
    alternate ack1 1 --scenario fanout --rooms 100 --subs 1 --pubs 1 --rate 1000 --duration "$DURATION" --warmup 2s
    ;;
  ack3)
    echo "-- ack3: 3 nodes on loopback, 1,000 publishes/s over 100 rooms"
    alternate ack3 3 --scenario fanout --rooms 100 --subs 1 --pubs 1 --rate 1000 --duration "$DURATION" --warmup 2s
    ;;
  idle)
    echo "-- idle: 3 nodes, CPU over ${IDLE} s"
    for ((k = 1; k <= PAIRS; k++)); do
      for bin in "${builds[@]}"; do
        idle_run "idle0-$(label "$bin")$k" "$bin" 0
        idle_run "idle$ROOMS-$(label "$bin")$k" "$bin" "$ROOMS"
      done
    done
    ;;
  *) echo "unknown scenario $s (fanout, ack1, ack3, idle)" >&2; exit 2 ;;
  esac
done
[ "$keep" = 1 ] && echo && echo "runs kept in $OUT"
exit 0
