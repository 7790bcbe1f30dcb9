#!/usr/bin/env bash
# How long poolsync takes to load a large deployment and list its pools.
#
#   bench/deployment_load.sh [POOLS...]      (default: 1000 10000 100000)
#
# For each size, bench/make_deployment.py writes a deployment of POOLS pools
# (POOLS/2 pairs in 100 sites, two computers and a store folder each; the
# folders are not created) and the script times, RUNS times,
#
#   poolsync --deployment big.toml -c 'get_pool().len()'
#
# checks that it prints POOLS, and prints a Markdown table of the median wall
# time and peak RSS (GNU time).
#
# Environment:
#   POOLSYNC       the binary (default: target/release/poolsync of this repository)
#   POOLSYNC_OLD   another binary to time beside it (e.g. an older commit's), optional
#   OLD_MAX_POOLS  the largest size POOLSYNC_OLD is run at (default 2000: a
#                  quadratic loader would take hours at 100,000)
#   RUNS           timed runs per binary and size (default 3)
#   BENCH_DIR      scratch directory (default: a new /tmp/poolsync-load.XXXXXX)
set -euo pipefail
export LC_ALL=C
umask 022 # poolsync refuses a deployment file or folder that others can write

here=$(cd "$(dirname "$0")/.." && pwd)
new=${POOLSYNC:-$here/target/release/poolsync}
old=${POOLSYNC_OLD:-}
old_max=${OLD_MAX_POOLS:-2000}
runs=${RUNS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
dir=${BENCH_DIR:-$(mktemp -d /tmp/poolsync-load.XXXXXX)}
mkdir -p "$dir"
[ -x "$new" ] || { echo "no binary at $new: run cargo build --release" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }

# median SECONDS... : the middle value (the lower middle for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# time_one LABEL BINARY FILE POOLS: "SECONDS KB", the medians of the runs
time_one() {
    local label=$1 bin=$2 file=$3 pools=$4 secs=() kbs=() i out s k
    for ((i = 0; i < runs; i++)); do
        out=$(/usr/bin/time -f '%e %M' -o "$dir/time" \
            "$bin" --deployment "$file" -c 'get_pool().len()') || return 1
        [ "$out" = "$pools" ] || { echo "$bin printed '$out', not $pools" >&2; return 1; }
        read -r s k <"$dir/time"
        secs+=("$s")
        kbs+=("$k")
        echo "  $label, $pools pools, run $((i + 1)): $s s, $k KB" >&2
    done
    echo "$(median "${secs[@]}") $(median "${kbs[@]}")"
}

if [ -n "$old" ]; then
    echo "| pools | file | poolsync | peak RSS | old binary | old peak RSS |"
    echo "|---:|---:|---:|---:|---:|---:|"
else
    echo "| pools | file | poolsync | peak RSS |"
    echo "|---:|---:|---:|---:|"
fi
for pools in "${sizes[@]}"; do
    file=$dir/big$pools.toml
    python3 "$here/bench/make_deployment.py" "$pools" "$file"
    size=$(du -k "$file" | awk '{printf "%.1f MiB", $1 / 1024}')
    result=$(time_one poolsync "$new" "$file" "$pools")
    read -r s k <<<"$result"
    row="| $pools | $size | $s s | $((k / 1024)) MiB |"
    if [ -n "$old" ]; then
        if [ "$pools" -le "$old_max" ]; then
            result=$(time_one old "$old" "$file" "$pools")
            read -r os ok <<<"$result"
            row="$row $os s | $((ok / 1024)) MiB |"
        else
            row="$row (not run) | |"
        fi
    fi
    echo "$row"
done
[ -n "${BENCH_DIR:-}" ] || rm -rf "$dir"
