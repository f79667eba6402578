#!/bin/bash
# Scripts over two keys (README, "Scripting"): an EVAL that increments two
# counters, and one shaped like Laravel's queue scripts (push a job, pop it
# into a reserved sorted set, acknowledge it: three keys that end empty), on
# keys on different shards and under one {hash tag}, every client on the
# same keys, then on random pairs of keys (about half of them apart);
# redis-server in the same run. Both servers with appendfsync everysec.
#   bench/scripts.sh         (STRAND=target/release/strand SHARDS=2 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
SPORT=${SPORT:-7467}
RPORT=${RPORT:-7468}
PAIR=scripts
# shellcheck source=bench/pair.sh
. bench/pair.sh
INCR="redis.call('incr', KEYS[1]) return redis.call('incr', KEYS[2])"
JOB="redis.call('rpush', KEYS[1], ARGV[1]) redis.call('rpush', KEYS[3], 1) \
local job = redis.call('lpop', KEYS[1]) redis.call('zadd', KEYS[2], 1700000000, job) \
redis.call('lpop', KEYS[3]) return redis.call('zrem', KEYS[2], job)"
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    for keys in "q0 $other q0:n" "{t}a {t}b {t}c"; do
        read -r k1 k2 k3 <<<"$keys"
        for p in "$SPORT" "$RPORT"; do
            echo "  $p EVAL incr $k1 $k2: $(rps "$p" -n 100000 EVAL "$INCR" 2 "$k1" "$k2")"
            echo "  $p EVAL job $k1:q $k2:r $k3:n: $(rps "$p" -n 100000 EVAL "$JOB" 3 "$k1:q" "$k2:r" "$k3:n" job)"
        done
    done
done
for p in "$SPORT" "$RPORT"; do
    echo "  $p EVAL incr over random pairs of 10,000 keys: $(rps "$p" -n 100000 -r 10000 EVAL "$INCR" 2 a:__rand_int__ b:__rand_int__)"
done
