# Shared by bench/moves.sh and bench/pops.sh (sourced, not run): starts
# strand (2 shards by default) and redis-server side by side, both with
# appendfsync everysec, stops both on exit, and gives `rps PORT ARGS...`
# (redis-benchmark -c 50 -P 1) and `other` (a key on another shard than q0).
# Expects SPORT, RPORT and a name for the work directory in PAIR.
STRAND=${STRAND:-target/release/strand}
SHARDS=${SHARDS:-2}
ROUNDS=${ROUNDS:-2}
WORK=$(mktemp -d "/var/tmp/strand-$PAIR.XXXXXX")
stop() {
    redis-cli -p "$SPORT" shutdown >/dev/null 2>&1 || true
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$WORK"
}
trap stop EXIT
mkdir -p "$WORK/redis"
"$STRAND" --port "$SPORT" --shards "$SHARDS" --dir "$WORK/strand" --appendfsync everysec >"$WORK/strand.log" 2>&1 &
redis-server --port "$RPORT" --dir "$WORK/redis" --save '' --appendonly yes --appendfsync everysec --daemonize yes >/dev/null
for p in "$SPORT" "$RPORT"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
rps() { redis-benchmark -p "$1" -c 50 -P 1 -q "${@:2}" | tr '\r' '\n' | grep "requests per second" | tail -1; }
# Two keys on different shards: a script run for q0 may not touch the other.
other=$(for k in q1 q2 q3 q4 q5 q6 q7 q8; do
    redis-cli -p "$SPORT" eval "return redis.call('exists', ARGV[1])" 1 q0 "$k" 2>&1 | grep -q "non local" && echo "$k" && break
done)
export other
