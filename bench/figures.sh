#!/usr/bin/env bash
# Measures the figures README.md reports, side by side with redis-server in
# the same run: redis-benchmark throughput and latency, start-up recovery
# speed, and RSS per key. Needs redis-server, redis-benchmark and redis-cli
# (apt-get install redis-server) and a release build (cargo build --release).
#
#   bench/figures.sh [throughput|cpu|types|recovery|compaction|memory|streams|queues|timeseries|search|soak|kvcompare|tiered|all]   (default: all;
#   timeseries and search are not in all: they read ../shared/data/tsdata/node-1s.jsonl.zst
#   (or $TSDATA) and ../shared/data/search (or $SEARCHDATA); soak (4 minutes) and kvcompare are not in all either)
#   N=1000000 requests per test; WORK=/var/tmp/strand-figures for data.
set -euo pipefail
cd "$(dirname "$0")/.."
STRAND=${STRAND:-target/release/strand}
N=${N:-1000000}
WORK=${WORK:-/var/tmp/strand-figures}
SPORT=${SPORT:-7411}
RPORT=${RPORT:-7412}
mkdir -p "$WORK"
for tool in redis-cli redis-server redis-benchmark; do
    command -v $tool >/dev/null || { echo "figures.sh drives $tool: apt-get install redis-tools redis-server" >&2; exit 1; }
done

stop_all() {
    redis-cli -p $SPORT shutdown >/dev/null 2>&1 || true
    redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1 || true
    while pgrep -f "strand --port $SPORT" >/dev/null || pgrep -f "redis-server .*:$RPORT" >/dev/null; do sleep 0.2; done
}
trap stop_all EXIT

wait_port() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 did not answer" >&2; exit 1; }

start_strand() { rm -rf "$WORK/strand"; "$STRAND" --port $SPORT --dir "$WORK/strand" "$@" >"$WORK/strand.log" 2>&1 & wait_port $SPORT; }
start_redis() { rm -rf "$WORK/redis"; mkdir -p "$WORK/redis"; redis-server --port $RPORT --dir "$WORK/redis" --daemonize yes "$@" >/dev/null; wait_port $RPORT; }

# One redis-benchmark run; prints "test rps p50 p99" lines.
bench() {
    local port=$1 pipeline=$2 tests=${3:-set,get,incr,mset}
    redis-benchmark -p "$port" -t "$tests" -c 50 -n "$N" -d 64 -P "$pipeline" --csv 2>/dev/null |
        awk 'NR > 1 { gsub(/"/, ""); n = split($0, f, ","); name = f[1]; gsub(/ /, "_", name); print name, f[2], f[5], f[7] }'
}

throughput() {
    echo "## redis-benchmark -t set,get,incr,mset -c 50 -n $N -d 64 (ops/s, p50 ms, p99 ms)"
    echo
    echo "| pipeline | strand mode | redis mode | test | strand ops/s | redis ops/s | ratio | strand p50/p99 | redis p50/p99 |"
    echo "|---|---|---|---|---|---|---|---|---|"
    local modes=("--persistence off|--save '' --appendonly no" "--appendfsync everysec|--save '' --appendonly yes --appendfsync everysec")
    for p in 1 16; do
        for m in "${modes[@]}"; do
            local smode=${m%%|*} rmode=${m#*|}
            start_strand $smode
            eval start_redis "$rmode"
            # Alternate: strand, redis.
            bench $SPORT "$p" >"$WORK/s.txt"
            bench $RPORT "$p" >"$WORK/r.txt"
            stop_all
            paste -d' ' "$WORK/s.txt" "$WORK/r.txt" | while read -r t srps sp50 sp99 _ rrps rp50 rp99; do
                ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN { printf "%.2f", a / b }')
                echo "| $p | \`$smode\` | \`$rmode\` | $t | $srps | $rrps | $ratio | $sp50 / $sp99 | $rp50 / $rp99 |"
            done
        done
    done
}

# Server CPU per request (utime + stime of the server process over a fixed
# run, in µs per request): steadier than ops/s on this shared 2-core machine,
# where the benchmark client and the server take turns on the CPUs. strand
# --persistence off beside redis --save '' --appendonly no, alternately,
# ROUNDS times (default 3), for each of set,get,incr at -P 16 and -P 1.
cpu() {
    local rounds=${ROUNDS:-3}
    echo "## server CPU per request, redis-benchmark -c 50 -n $N -d 64, $rounds alternating rounds (µs/request; ratio = strand / redis)"
    echo
    echo "| pipeline | test | round | strand µs | redis µs | ratio | strand ops/s | redis ops/s |"
    echo "|---|---|---|---|---|---|---|---|"
    ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
    # Runs one test against the server on $port (pid $pid); prints "µs/request ops/s".
    measure() {
        local port=$1 pid=$2 p=$3 t=$4 before after rps
        before=$(ticks "$pid")
        rps=$(redis-benchmark -p "$port" -t "$t" -c 50 -n "$N" -d 64 -P "$p" --csv 2>/dev/null | awk -F'"' 'NR == 2 { print $4 }')
        after=$(ticks "$pid")
        awk -v t=$((after - before)) -v n="$N" -v hz="$(getconf CLK_TCK)" -v rps="$rps" 'BEGIN { printf "%.3f %s\n", t * 1e6 / hz / n, rps }'
    }
    for p in 16 1; do
        for t in set get incr; do
            for r in $(seq "$rounds"); do
                start_strand --persistence off
                local spid=$!
                redis-cli -p $SPORT set key:__rand_int__ 0 >/dev/null
                read -r sus srps < <(measure $SPORT "$spid" "$p" "$t")
                stop_all
                start_redis --save '' --appendonly no
                redis-cli -p $RPORT set key:__rand_int__ 0 >/dev/null
                read -r rus rrps < <(measure $RPORT "$(redis-cli -p $RPORT info server | awk -F: '/^process_id/ { print $2 + 0 }')" "$p" "$t")
                stop_all
                echo "| $p | $t | $r | $sus | $rus | $(awk -v a="$sus" -v b="$rus" 'BEGIN { printf "%.2f", a / b }') | $srps | $rrps |"
            done
        done
    done
}

# The data-type commands of issue 3, log on (everysec) beside Redis's AOF everysec.
types() {
    local tests=lpush,lpop,sadd,hset,spop,zadd,zpopmin,lrange_100
    echo "## redis-benchmark -t $tests -c 50 -n $N -d 64, strand --appendfsync everysec beside redis --appendonly yes --appendfsync everysec"
    echo
    echo "| pipeline | test | strand ops/s | redis ops/s | ratio | strand p50/p99 | redis p50/p99 |"
    echo "|---|---|---|---|---|---|---|"
    for p in 1 16; do
        start_strand --appendfsync everysec
        start_redis --save '' --appendonly yes --appendfsync everysec
        bench $SPORT "$p" "$tests" >"$WORK/s.txt"
        bench $RPORT "$p" "$tests" >"$WORK/r.txt"
        stop_all
        paste -d' ' "$WORK/s.txt" "$WORK/r.txt" | while read -r t srps sp50 sp99 _ rrps rp50 rp99; do
            ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN { printf "%.2f", a / b }')
            echo "| $p | $t | $srps | $rrps | $ratio | $sp50 / $sp99 | $rp50 / $rp99 |"
        done
    done
}

# Prints "replayed MiB, slowest shard ms, process start to first PING s" for a restart on $WORK/strand.
restart_timed() {
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    local t0 t1 replayed entries ms
    t0=$(date +%s.%N)
    "$STRAND" --port $SPORT --dir "$WORK/strand" "$@" >"$WORK/strand.log" 2>&1 &
    wait_port $SPORT
    t1=$(date +%s.%N)
    replayed=$(redis-cli -p $SPORT info persistence | awk -F: '/^recovery_bytes/ { print $2 }' | tr -d '\r')
    entries=$(redis-cli -p $SPORT info persistence | awk -F: '/^recovery_checkpoint_entries/ { print $2 }' | tr -d '\r')
    ms=$(grep -o 'log replayed.*ms=[0-9]*' "$WORK/strand.log" | grep -o 'ms=[0-9]*' | cut -d= -f2 | sort -n | tail -1)
    awk -v b="$replayed" -v e="$entries" -v ms="$ms" -v t0="$t0" -v t1="$t1" 'BEGIN {
        printf "checkpoint entries loaded %d; log scanned %.0f MiB; slowest shard %d ms; process start to first PING %.2f s\n",
            e, b / 1048576, ms, t1 - t0 }'
}

recovery() {
    echo "## Start-up with ~1 GiB of log: full replay, then from a checkpoint"
    # No checkpoint may run while the log is written, so the whole GiB stays to be replayed.
    start_strand --appendfsync no --segment-size 256mb --compaction-threshold 0 --checkpoint-interval 0
    redis-benchmark -p $SPORT -t set -d 1000 -r 100000000 -n 1000000 -c 50 -P 16 -q >/dev/null 2>&1
    redis-cli -p $SPORT shutdown nosave >/dev/null 2>&1 || true
    while pgrep -f "strand --port $SPORT" >/dev/null; do sleep 0.2; done
    echo "log files: $(du -sb --apparent-size "$WORK/strand" | cut -f1) bytes (preallocated segments)"
    echo -n "full replay: "
    restart_timed --compaction-threshold 0 --checkpoint-interval 0
    local t0 t1
    t0=$(date +%s.%N)
    redis-cli -p $SPORT save >/dev/null
    t1=$(date +%s.%N)
    echo "SAVE (checkpoint of $(redis-cli -p $SPORT dbsize) keys): $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, $(redis-cli -p $SPORT info persistence | awk -F: '/^checkpoint_bytes:/ { print $2 }' | tr -d '\r') bytes"
    redis-cli -p $SPORT shutdown nosave >/dev/null 2>&1 || true
    while pgrep -f "strand --port $SPORT" >/dev/null; do sleep 0.2; done
    echo -n "from the checkpoint: "
    restart_timed --compaction-threshold 0 --checkpoint-interval 0
    stop_all
}

compaction() {
    local keys=${KEYS:-100000} n=$((N * 4))
    echo "## Overwrite workload: $keys keys of 1000 bytes overwritten $n times, appendfsync everysec, 32 MiB segments"
    start_strand --appendfsync everysec --segment-size 32mb
    redis-benchmark -p $SPORT -t set -d 1000 -r "$keys" -n $n -c 50 -P 16 -q >/dev/null 2>&1 &
    local bench=$! peak=0 disk
    while kill -0 $bench 2>/dev/null; do
        disk=$(redis-cli -p $SPORT info persistence | awk -F: '/^(log_disk_bytes|checkpoint_bytes):/ { s += $2 } END { print s }')
        [ "$disk" -gt "$peak" ] && peak=$disk
        sleep 0.2
    done
    sleep 2
    local live logb ckp saves
    live=$(redis-cli -p $SPORT dbsize)
    logb=$(redis-cli -p $SPORT info persistence | awk -F: '/^log_bytes_written:/ { print $2 }' | tr -d '\r')
    ckp=$(redis-cli -p $SPORT info persistence | awk -F: '/^checkpoint_bytes_written:/ { print $2 }' | tr -d '\r')
    saves=$(redis-cli -p $SPORT info persistence | awk -F: '/^rdb_saves:/ { print $2 }' | tr -d '\r')
    awk -v n=$n -v keys="$live" -v logb="$logb" -v ckp="$ckp" -v peak="$peak" -v saves="$saves" 'BEGIN {
        client = n * 1000; live = keys * 1000
        printf "client value bytes %.0f MiB; log written %.0f MiB, %d checkpoints wrote %.0f MiB: write amplification %.2f\n",
            client / 1048576, logb / 1048576, saves, ckp / 1048576, (logb + ckp) / client
        printf "live %.1f MiB; peak on disk (segments + checkpoints) %.1f MiB = %.1fx live\n", live / 1048576, peak / 1048576, peak / live }'
    stop_all
}

memory() {
    echo "## RSS per key, 1,000,000 keys with 16-byte values"
    start_strand --persistence off
    start_redis --save '' --appendonly no
    for port in $SPORT $RPORT; do
        local pid before after keys
        pid=$(redis-cli -p $port info server | awk -F: '/^process_id/ { print $2 }' | tr -d '\r')
        before=$(awk '/VmRSS/ { print $2 }' /proc/"$pid"/status)
        awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$16\r\n0123456789abcdef\r\n", length("key:" i), i }' |
            redis-cli -p $port --pipe >/dev/null
        after=$(awk '/VmRSS/ { print $2 }' /proc/"$pid"/status)
        keys=$(redis-cli -p $port dbsize)
        awk -v p="$port" -v s=$SPORT -v b="$before" -v a="$after" -v k="$keys" 'BEGIN {
            printf "%s: %d keys, RSS %.1f MiB -> %.1f MiB, %.1f bytes per key\n", (p == s ? "strand" : "redis "), k, b / 1024, a / 1024, (a - b) * 1024 / k }'
    done
    stop_all
}

# One redis-benchmark run of a custom command; prints "rps p50 p99".
bench_cmd() {
    local port=$1 pipeline=$2 clients=$3 n=$4; shift 4
    redis-benchmark -p "$port" -c "$clients" -n "$n" -P "$pipeline" --csv "$@" 2>/dev/null |
        awk 'NR > 1 { gsub(/"/, ""); n = split($0, f, ","); print f[2], f[5], f[7] }'
}

# Streams (issue 4): XADD with and without pipelining under everysec and
# always, then the catch-up rate of XREAD and XREADGROUP over a filled stream.
streams() {
    local value
    value=$(head -c 64 /dev/zero | tr '\0' x)
    echo "## Streams: redis-benchmark -c 50 -n $N, 100 streams, 64-byte values (ops/s, p50 ms, p99 ms)"
    echo
    echo "| test | pipeline | fsync | strand ops/s | redis ops/s | ratio | strand p50/p99 | redis p50/p99 |"
    echo "|---|---|---|---|---|---|---|---|"
    for fsync in everysec always; do
        for p in 1 32; do
            start_strand --appendfsync $fsync
            start_redis --save '' --appendonly yes --appendfsync $fsync
            local s r
            s=$(bench_cmd $SPORT "$p" 50 "$N" -r 100 XADD stream:__rand_int__ '*' f "$value")
            r=$(bench_cmd $RPORT "$p" 50 "$N" -r 100 XADD stream:__rand_int__ '*' f "$value")
            stop_all
            read -r srps sp50 sp99 <<<"$s"
            read -r rrps rp50 rp99 <<<"$r"
            echo "| XADD | $p | $fsync | $srps | $rrps | $(awk -v a="$srps" -v b="$rrps" 'BEGIN { printf "%.2f", a / b }') | $sp50 / $sp99 | $rp50 / $rp99 |"
        done
    done
    echo
    echo "Catch-up over one stream of 200000 entries, 100 entries per read (entries/s = reads/s x 100):"
    echo
    echo "| read | strand entries/s | redis entries/s | ratio |"
    echo "|---|---|---|---|"
    start_strand --appendfsync everysec
    start_redis --save '' --appendonly yes --appendfsync everysec
    for port in $SPORT $RPORT; do
        bench_cmd "$port" 64 10 200000 XADD big '*' f "$value" >/dev/null
        redis-cli -p "$port" XGROUP CREATE big g 0 >/dev/null
    done
    local xs xr gs gr
    xs=$(bench_cmd $SPORT 1 10 20000 XREAD COUNT 100 STREAMS big 0 | awk '{ print $1 * 100 }')
    xr=$(bench_cmd $RPORT 1 10 20000 XREAD COUNT 100 STREAMS big 0 | awk '{ print $1 * 100 }')
    gs=$(bench_cmd $SPORT 1 1 2000 XREADGROUP GROUP g c COUNT 100 STREAMS big '>' | awk '{ print $1 * 100 }')
    gr=$(bench_cmd $RPORT 1 1 2000 XREADGROUP GROUP g c COUNT 100 STREAMS big '>' | awk '{ print $1 * 100 }')
    stop_all
    echo "| XREAD COUNT 100 from 0 (10 clients) | $xs | $xr | $(awk -v a="$xs" -v b="$xr" 'BEGIN { printf "%.2f", a / b }') |"
    echo "| XREADGROUP COUNT 100 > (1 client, each entry made pending) | $gs | $gr | $(awk -v a="$gs" -v b="$gr" 'BEGIN { printf "%.2f", a / b }') |"
}

# Reliable queues (issue 4): push + pop + ack with --appendfsync always, strand's
# queue (QPUSH/QPOP/QACK) and strand's streams beside redis-server streams
# (XADD/XREADGROUP/XACK, appendfsync always): saturated throughput, then the
# push-to-pop latency at a paced 5000 msg/s.
queues() {
    local bench=${BENCH:-target/release/strand-bench} m=${MESSAGES:-100000}
    echo "## Queues: 4 producers (pipeline 8), 4 consumers (batch 10), 64-byte messages, fsync always"
    echo
    echo '```'
    start_strand --appendfsync always
    start_redis --save '' --appendonly yes --appendfsync always
    "$bench" --port $SPORT --workload queue --messages "$m" -P 8 | tail -1
    "$bench" --port $SPORT --workload stream --messages "$m" -P 8 | tail -1
    "$bench" --port $RPORT --workload stream --messages "$m" -P 8 | tail -1
    echo "batched as RabbitMQ's perf-test runs (64 pushes in flight per producer, pops of up to 100):"
    "$bench" --port $SPORT --workload queue --messages "$m" -P 64 --batch 100 | tail -1
    "$bench" --port $SPORT --workload stream --messages "$m" -P 64 --batch 100 | tail -1
    "$bench" --port $RPORT --workload stream --messages "$m" -P 64 --batch 100 | tail -1
    echo "32 pushes in flight per producer, pops of up to 100 (RabbitMQ's classic-queue anchor: 99k msg/s at p99 2 ms), after a warm-up run:"
    "$bench" --port $SPORT --workload queue --messages 100000 -P 32 --batch 100 >/dev/null
    for _ in 1 2 3; do
        "$bench" --port $SPORT --workload queue --messages "$m" -P 32 --batch 100 | tail -1
        "$bench" --port $RPORT --workload stream --messages "$m" -P 32 --batch 100 | tail -1
    done
    echo "paced at 5000 msg/s:"
    "$bench" --port $SPORT --workload queue --messages 20000 --rate 5000 | tail -1
    "$bench" --port $SPORT --workload stream --messages 20000 --rate 5000 | tail -1
    "$bench" --port $RPORT --workload stream --messages 20000 --rate 5000 | tail -1
    stop_all
    echo '```'
}

# The shared time-series dataset through TS.MADD: samples/s and bytes per sample.
timeseries() {
    local data=${TSDATA:-../shared/data/tsdata/node-1s.jsonl.zst}
    start_strand
    target/release/strand-bench -p $SPORT -c 4 --tsdata "$data" --ts-data-dir "$WORK/strand"
    stop_all
}

# Full-text search on the Debian package corpus: index build through HSET
# with the index live, FT.SEARCH latency, overlap@10 and hit counts against
# the reference engines' answers (RediSearch BM25STD first). No RediSearch
# here: the README's anchors are the dataset README's figures.
search() {
    local data=${SEARCHDATA:-../shared/data/search}
    start_strand
    target/release/strand-bench -p $SPORT -c 4 --search-data "$data" --search-out "$WORK/search.jsonl" --search-rounds 40
    python3 "$data/overlap_md.py" "$data/dev-ref" --project "$WORK/search.jsonl" | tail -8
    echo "server RSS: $(ps -o rss= -p "$(pgrep -f "strand --port $SPORT")") KiB"
    stop_all
}

# The soak: strand with its defaults, its 100,000 keys filled first, then
# SOAK_CONNECTIONS (1000) connections for SOAK_SECONDS (240) of SET:GET 1:4
# over those keys drawn Zipfian (exponent 0.99), sampled every
# second (ops/s, p50/p99/p99.9, errors, the server's RSS); the samples go to
# $WORK/soak.json and the chart to ${SOAK_SVG:-docs/soak.svg}. Over about 1000
# connections the client and server need `ulimit -n` above the connection count.
soak() {
    local bench=${BENCH:-target/release/strand-bench} c=${SOAK_CONNECTIONS:-1000} secs=${SOAK_SECONDS:-240}
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -le $((c + 100)) ]; then ulimit -n $((c + 1024)); fi
    start_strand
    # Fill every key first, so that RSS over the soak is not the keyspace filling in.
    "$bench" -p $SPORT -c 50 -n 500000 --ratio 1:0 --keyspace 100000 --data-size 128 --report-interval 0 >/dev/null
    echo "after the fill: $(redis-cli -p $SPORT dbsize) keys, $(redis-cli -p $SPORT info memory | grep '^used_memory_rss:' | tr -d '\r')"
    "$bench" -p $SPORT -c "$c" --threads 2 --duration "$secs" --ratio 1:4 --keyspace 100000 --key-pattern zipfian \
        --data-size 128 --report-interval 1 --json "$WORK/soak.json"
    echo "after the soak: $(redis-cli -p $SPORT dbsize) keys, $(redis-cli -p $SPORT info memory | grep '^used_memory_rss:' | tr -d '\r')"
    stop_all
    "$bench" report "$WORK/soak.json" --out "${SOAK_SVG:-docs/soak.svg}"
}

# A short kv run with strand-bench's --compare: strand with its defaults
# (appendfsync everysec) beside redis-server with its AOF on everysec, for
# COMPARE_SECONDS (20), keys drawn KEY_PATTERN (zipfian; or uniform).
# The tiered policy: a data set 4x maxmemory. Index bytes per key, GET latency
# of cold and hot keys (1 and 50 connections) and a 90% GET / 10% SET
# workload, beside redis-server holding everything in memory; fio's 4 KiB
# random reads on the same disk for scale.
tiered() {
    local bench=${BENCH:-target/release/strand-bench} keys=${TIER_KEYS:-400000} secs=${TIER_SECONDS:-10}
    echo "## tiered: $keys keys of 1000 bytes (~$((keys / 1000)) MB) with --maxmemory $((keys / 4000))mb; redis-server without a limit"
    start_strand --appendfsync everysec --maxmemory $((keys / 4000))mb
    start_redis --save '' --appendonly yes --appendfsync everysec
    local v
    v=$(head -c 1000 /dev/zero | tr '\0' v)
    for port in $SPORT $RPORT; do
        awk -v n="$keys" -v v="$v" 'BEGIN { for (i = 0; i < n; i++) { k = sprintf("key:%012d", i); printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1000\r\n%s\r\n", length(k), k, v } }' |
            redis-cli -p $port --pipe >/dev/null
    done
    redis-cli -p $SPORT info everything | grep -E '^(used_memory|used_memory_index|maxmemory|tiered_keys|tier_disk_bytes|tier_segments):' | tr -d '\r'
    echo "db keys: $(redis-cli -p $SPORT dbsize); index bytes per key: $(redis-cli -p $SPORT info memory | awk -F: -v k="$(redis-cli -p $SPORT dbsize)" '/^used_memory_index:/ { printf "%.1f", $2 / k }')"
    # Cold reads from the device, not from the page cache (root only).
    sync; echo 3 2>/dev/null >/proc/sys/vm/drop_caches || echo "(page cache not dropped: not root)"
    echo "### GET, uniform over all keys (mostly cold): 1 connection, then 50"
    "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 1 --threads 1 --duration "$secs" --ratio 0:1 --keyspace "$keys" --report-interval 0
    "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 50 --duration "$secs" --ratio 0:1 --keyspace "$keys" --report-interval 0
    echo "### GET of 1000 keys (hot after their first read): 1 connection, then 50"
    "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 1 --threads 1 --duration "$secs" --ratio 0:1 --keyspace 1000 --report-interval 0
    "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 50 --duration "$secs" --ratio 0:1 --keyspace 1000 --report-interval 0
    echo "### 90% GET / 10% SET, uniform over all keys, 50 connections"
    "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 50 --duration "$secs" --ratio 1:9 -d 1000 --keyspace "$keys" --report-interval 0
    redis-cli -p $SPORT info stats | grep -E '^tier_(reads|read_errors|bytes_read):' | tr -d '\r'
    stop_all
    if command -v fio >/dev/null; then
        echo "### fio 4 KiB random reads, O_DIRECT, io_uring, same disk"
        for depth in 1 32; do
            fio --name=rr --filename="$WORK/fio.dat" --size=1g --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=$depth \
                --runtime="$secs" --time_based --output-format=json 2>/dev/null |
                python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; p=j["clat_ns"]["percentile"]; print("iodepth '$depth': %.0f IOPS, clat p50 %.1f us, p99 %.1f us" % (j["iops"], p["50.000000"]/1e3, p["99.000000"]/1e3))'
        done
        rm -f "$WORK/fio.dat"
    fi
}

kvcompare() {
    local bench=${BENCH:-target/release/strand-bench}
    start_strand
    start_redis --save '' --appendonly yes --appendfsync everysec
    local p
    for p in ${PIPELINES:-1 16}; do
        "$bench" -p $SPORT --compare 127.0.0.1:$RPORT -c 50 -P "$p" --duration "${COMPARE_SECONDS:-20}" --ratio 1:4 --keyspace 100000 \
            --key-pattern "${KEY_PATTERN:-zipfian}" --json "$WORK/kvcompare-P$p.json"
    done
    stop_all
    "$bench" report "$WORK"/kvcompare-P*.json --out "${CHART:-$WORK/kvcompare.svg}"
}

case "${1:-all}" in
    soak) soak ;;
    kvcompare) kvcompare ;;
    tiered) tiered ;;
    throughput) throughput ;;
    cpu) cpu ;;
    search) search ;;
    timeseries) timeseries ;;
    types) types ;;
    recovery) recovery ;;
    compaction) compaction ;;
    memory) memory ;;
    streams) streams ;;
    queues) queues ;;
    all) throughput; echo; types; echo; recovery; echo; compaction; echo; memory; echo; streams; echo; queues ;;
    *) echo "usage: $0 [throughput|cpu|types|recovery|compaction|memory|streams|queues|timeseries|search|soak|kvcompare|tiered|all]" >&2; exit 2 ;;
esac
