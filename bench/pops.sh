#!/bin/bash
# Pops over two lists (README, "Blocking commands"): BRPOP first second 1
# where the first list is empty and the second full, so every pop passes
# over the first; the lists on different shards, and under one {hash tag};
# redis-server in the same run. Both servers with appendfsync everysec.
#   bench/pops.sh            (STRAND=target/release/strand SHARDS=2 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
SPORT=${SPORT:-7463}
RPORT=${RPORT:-7464}
PAIR=pops
# shellcheck source=bench/pair.sh
. bench/pair.sh
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
