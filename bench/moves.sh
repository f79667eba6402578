#!/bin/bash
# Cross-shard moves against redis-server in the same run (README, "Keys on
# several shards"): COPY between random keys (about half the pairs on
# different shards) and RPOPLPUSH between one pair of lists, on different
# shards and under one {hash tag}. Both servers with appendfsync everysec.
#   bench/moves.sh            (STRAND=target/release/strand SHARDS=2 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
SPORT=${SPORT:-7461}
RPORT=${RPORT:-7462}
PAIR=moves
# shellcheck source=bench/pair.sh
. bench/pair.sh
for p in "$SPORT" "$RPORT"; do rps "$p" -r 10000 -n 200000 SET src:__rand_int__ value >/dev/null; done
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    for p in "$SPORT" "$RPORT"; do echo "  $p $(rps "$p" -r 10000 -n 200000 COPY src:__rand_int__ dst:__rand_int__ REPLACE)"; done
    for pair in "q0 $other" "{t}a {t}b"; do
        for p in "$SPORT" "$RPORT"; do
            # shellcheck disable=SC2086
            redis-cli -p "$p" del $pair >/dev/null
            rps "$p" -n 400000 RPUSH ${pair%% *} element >/dev/null
            # shellcheck disable=SC2086
            echo "  $p $(rps "$p" -n 300000 RPOPLPUSH $pair)"
        done
    done
done
echo "strand $(redis-cli -p "$SPORT" info stats | grep cross_shard_transactions: | tr -d '\r')"
