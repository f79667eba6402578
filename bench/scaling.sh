#!/usr/bin/env bash
# Multi-core scaling: strand with 1, 2, 4, 8 shards beside redis-server (one
# thread, and with io-threads), in the same run, on a machine with enough
# cores that the load generator does not share the server's.
#
# The servers run on CPUs 0..N-1 (strand pins shard i to CPU i; redis-server
# is bound with taskset), the clients on $CLIENT_CPUS. Uniform keys over
# $KEYS keys, so with N shards about (N-1)/N of the requests take the hop to
# another shard: this measures the shared-nothing design, not a lucky key
# placement. For every run it also reads the CPU seconds the server and the
# client spent, from /proc, so a flat line can be told apart from a saturated
# client.
#
#   bench/scaling.sh            (16+ cores; prints Markdown tables)
#   SHARDS="1 2" DUR=2 CLIENT_CPUS=1 THREADS=1 bench/scaling.sh   (a smoke run on 2 cores)
#
# Binaries come from $PATH (strand, strand-bench, redis-server,
# redis-benchmark, redis-cli) unless STRAND=..., BENCH=... name them.
# BEFORE=path/to/older/strand adds its rows at 1 and the most shards, for a
# before/after in one run; SPIN=50 adds the most shards with
# --spin-before-park 50; RB=0 leaves out the redis-benchmark table.
set -uo pipefail
STRAND=${STRAND:-strand}
BENCH=${BENCH:-strand-bench}
SHARDS=${SHARDS:-"1 2 4 8"}
DUR=${DUR:-8}
CLIENT_CPUS=${CLIENT_CPUS:-8-15}
THREADS=${THREADS:-8}
CONNS=${CONNS:-256}
KEYS=${KEYS:-1000000}
RB_N=${RB_N:-1000000}
RB=${RB:-1}
BEFORE=${BEFORE:-}
SPIN=${SPIN:-}
WORK=${WORK:-/var/tmp/strand-scaling}
PORT=${PORT:-7421}
mkdir -p "$WORK"

SERVER_PID=
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
wait_port() { for _ in $(seq 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "port $PORT did not answer" >&2; return 1; }
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
trap stop_server EXIT

# start_strand SHARDS ARGS... (the binary: $BIN, else $STRAND)
start_strand() {
    local n=$1; shift
    rm -rf "$WORK/data"
    "${BIN:-$STRAND}" --port "$PORT" --dir "$WORK/data" --shards "$n" --loglevel warn "$@" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_port || { cat "$WORK/server.log" >&2; return 1; }
}
# start_redis CPUS ARGS...
start_redis() {
    local cpus=$1; shift
    rm -rf "$WORK/data"; mkdir -p "$WORK/data"
    taskset -c "$cpus" redis-server --port "$PORT" --dir "$WORK/data" "$@" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_port || { cat "$WORK/server.log" >&2; return 1; }
}

# One strand-bench run against the server on $PORT; prints one table row:
# ops/s, p50, p99, p99.9, server CPU seconds, client CPU seconds.
bench_row() {
    local label=$1 pipeline=$2
    local s0 s1 out client
    s0=$(ticks "$SERVER_PID")
    out=$( (taskset -c "$CLIENT_CPUS" "$BENCH" -p "$PORT" --duration "$DUR" --threads "$THREADS" -c "$CONNS" \
        -P "$pipeline" --keyspace "$KEYS" --ratio 1:4 -d 64 --report-interval 0 >"$WORK/bench.out" 2>&1
        awk '{ print $16 + $17 }' "/proc/$BASHPID/stat") )
    client=$out
    s1=$(ticks "$SERVER_PID")
    awk -v l="$label" -v p="$pipeline" -v s=$((s1 - s0)) -v c="$client" -v d="$DUR" '
        $1 == "total" { printf "| %s | %s | %d | %d | %s | %s | %s | %.1f | %.1f |\n", l, p, $4, $3, $5, $7, $8, s / 100 / d, c / 100 / d }' "$WORK/bench.out"
    grep -qw total "$WORK/bench.out" || sed 's/^/    /' "$WORK/bench.out" >&2
}

# redis-benchmark's issue-2 figure; prints "test rps p50 p99" lines.
rb() {
    taskset -c "$CLIENT_CPUS" redis-benchmark -p "$PORT" -t set,get,incr,mset -c 50 -n "$RB_N" -d 64 -P "$1" \
        --threads "$THREADS" --csv 2>/dev/null |
        awk 'NR > 1 { gsub(/"/, ""); n = split($0, f, ","); print f[1] "|" f[2] "|" f[5] "|" f[7] }'
}

echo "# strand scaling, $(nproc) CPUs, $(uname -r)"
grep -m1 'model name' /proc/cpuinfo
echo
echo "strand-bench: ${DUR} s per run, $CONNS connections on $THREADS threads (CPUs $CLIENT_CPUS), uniform keys over $KEYS, SET:GET 1:4, 64-byte values."
echo "CPU columns: cores busy on average (CPU seconds / run seconds), server and client."
echo
echo "| server | pipeline | ops/s | errors | p50 ms | p99 ms | p99.9 ms | server cores | client cores |"
echo "|---|---|---|---|---|---|---|---|---|"
for p in 1 16; do
    start_redis 0 --save '' --appendonly no && bench_row "redis-server" "$p"; stop_server
    start_redis 0-3 --save '' --appendonly no --io-threads 4 --io-threads-do-reads yes && bench_row "redis-server io-threads 4" "$p"; stop_server
    for n in $SHARDS; do
        start_strand "$n" --persistence off && bench_row "strand --shards $n" "$p"; stop_server
    done
    last=${SHARDS##* }
    if [ -n "$SPIN" ]; then
        start_strand "$last" --persistence off --spin-before-park "$SPIN" && bench_row "strand --shards $last --spin-before-park $SPIN" "$p"; stop_server
    fi
    if [ -n "$BEFORE" ]; then
        for n in 1 "$last"; do
            BIN=$BEFORE start_strand "$n" --persistence off && bench_row "before: strand --shards $n" "$p"; stop_server
        done
    fi
done
start_redis 0 --save '' --appendonly yes --appendfsync everysec && bench_row "redis-server AOF everysec" 16; stop_server
start_strand "$last" --appendfsync everysec && bench_row "strand --shards $last, log everysec" 16; stop_server

[ "$RB" = 0 ] && exit 0
echo
echo "## redis-benchmark -t set,get,incr,mset -c 50 -n $RB_N -d 64 --threads $THREADS (client on CPUs $CLIENT_CPUS), no persistence"
echo
echo "| pipeline | server | test | ops/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|"
for p in 1 16; do
    for s in "redis" "strand 1" "strand $last"; do
        case $s in
            redis) start_redis 0 --save '' --appendonly no ;;
            *) start_strand "${s#strand }" --persistence off ;;
        esac || continue
        rb "$p" | while IFS='|' read -r t rps p50 p99; do echo "| $p | $s | $t | $rps | $p50 | $p99 |"; done
        stop_server
    done
done
