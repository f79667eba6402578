#!/bin/bash
# Pops over two lists (README, "Blocking commands"): BRPOP first second 1
# where the first list is empty and the second full, so every pop passes
# over the first; the lists on different shards, and under one {hash tag};
# redis-server in the same run. Both servers with appendfsync everysec.
#   bench/pops.sh            (STRAND=target/release/strand SHARDS=2 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
STRAND=${STRAND:-target/release/strand}
SHARDS=${SHARDS:-2}
ROUNDS=${ROUNDS:-2}
SPORT=${SPORT:-7463}
RPORT=${RPORT:-7464}
WORK=$(mktemp -d /var/tmp/strand-pops.XXXXXX)
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
# Two keys on different shards: SINTERCARD on them answers CROSSSLOT.
other=$(for k in q1 q2 q3 q4 q5 q6 q7 q8; do
    redis-cli -p "$SPORT" sintercard 2 q0 "$k" 2>&1 | grep -q CROSSSLOT && echo "$k" && break
done)
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    for pair in "q0 $other" "{t}a {t}b"; do
        for p in "$SPORT" "$RPORT"; do
            # shellcheck disable=SC2086
            redis-cli -p "$p" del $pair >/dev/null
            rps "$p" -n 400000 RPUSH ${pair##* } element >/dev/null
            # shellcheck disable=SC2086
            echo "  $p BRPOP $pair: $(rps "$p" -n 300000 BRPOP $pair 1)"
        done
    done
done
