#!/bin/bash
# Set algebra over two sets (README, "Keys on several shards"): SUNION and
# SUNIONSTORE over two sets of 10 members, on different shards and under one
# {hash tag}, every client on the same two keys; then SUNION over random
# pairs of 10,000 sets of 10 members (about half of the pairs apart);
# redis-server in the same run. Both servers with appendfsync everysec.
#   bench/algebra.sh         (STRAND=target/release/strand SHARDS=2 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
SPORT=${SPORT:-7465}
RPORT=${RPORT:-7466}
PAIR=algebra
# shellcheck source=bench/pair.sh
. bench/pair.sh
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    for pair in "q0 $other" "{t}a {t}b"; do
        for p in "$SPORT" "$RPORT"; do
            for k in $pair; do
                redis-cli -p "$p" del "$k" >/dev/null
                # shellcheck disable=SC2046
                redis-cli -p "$p" sadd "$k" $(seq -f "$k-%g" 10) >/dev/null
            done
            # shellcheck disable=SC2086
            echo "  $p SUNION $pair: $(rps "$p" -n 200000 SUNION $pair)"
            # shellcheck disable=SC2086
            echo "  $p SUNIONSTORE ${pair% *} $pair: $(rps "$p" -n 200000 SUNIONSTORE ${pair% *}:u $pair)"
        done
    done
done
for p in "$SPORT" "$RPORT"; do
    rps "$p" -n 100000 -r 10000 SADD "s:__rand_int__" m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 >/dev/null
    echo "  $p SUNION over random pairs: $(rps "$p" -n 200000 -r 10000 SUNION s:__rand_int__ s:__rand_int__)"
done
