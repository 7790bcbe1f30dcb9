#!/usr/bin/env bash
# Plain Rhai under poolsync against Rhai's own rhai-run, built from the same
# Rhai version, in one run, as ratios.
#
#   bench/scripting.sh [--runs N]
#
# Scripts (bench/rhai/): push.rhai with N = 100,000 and 1,000,000 pushes,
# sieve.rhai (primes to 1,000,000), loop.rhai (1,000,000 iterations),
# fib.rhai (recursive fib(25)), strings_map.rhai (a map of 200,000 strings).
# Each is run RUNS times per tool (default 7), the tools alternating; the
# median wall time is reported, and the outputs must be equal.
#
# rhai-run: RHAI_RUN if set, else built once into target/rhai-run/ with
#   cargo install rhai --version <the version in Cargo.lock> --features bin-features --bin rhai-run
set -euo pipefail
export LC_ALL=C
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNS=7
while [[ $# -gt 0 ]]; do
    case $1 in
    --runs)
        bench_positive --runs "${2:-}"
        RUNS=$2
        shift
        ;;
    -h | --help) bench_help ;;
    *) bench_unknown "$1" ;;
    esac
    shift
done
bench_poolsync
VERSION=$(awk '/^name = "rhai"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$REPO/Cargo.lock")
RHAI_RUN=${RHAI_RUN:-$REPO/target/rhai-run/bin/rhai-run}
if [[ ! -x $RHAI_RUN ]]; then
    echo "building rhai-run $VERSION (once)" >&2
    cargo install --quiet rhai --version "$VERSION" --features bin-features --bin rhai-run --root "$REPO/target/rhai-run"
fi
DIR=$(mktemp -d /tmp/poolsync-scripting.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export XDG_DATA_HOME=$DIR/xdg XDG_CONFIG_HOME=$DIR/xdg
"$POOLSYNC" --demo -c 1 >/dev/null # makes the demo once, outside the timings
sed 's/let n = 1_000_000;/let n = 100_000;/' "$HERE/rhai/push.rhai" >"$DIR/push-100k.rhai"
cp "$HERE/rhai/push.rhai" "$DIR/push-1m.rhai"
for s in sieve loop fib strings_map; do cp "$HERE/rhai/$s.rhai" "$DIR/$s.rhai"; done
wall() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >"$DIR/out" 2>&1
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}'
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "| script | rhai-run s | poolsync s | rhai-run / poolsync (speed) |"
echo "|---|--:|--:|--:|"
for s in push-100k push-1m sieve loop fib strings_map; do
    : >"$DIR/r.t"
    : >"$DIR/p.t"
    for i in $(seq 1 "$RUNS"); do
        if ((i % 2)); then
            wall "$RHAI_RUN" "$DIR/$s.rhai" >>"$DIR/r.t"; cp "$DIR/out" "$DIR/r.out"
            wall "$POOLSYNC" --demo "$DIR/$s.rhai" >>"$DIR/p.t"; cp "$DIR/out" "$DIR/p.out"
        else
            wall "$POOLSYNC" --demo "$DIR/$s.rhai" >>"$DIR/p.t"; cp "$DIR/out" "$DIR/p.out"
            wall "$RHAI_RUN" "$DIR/$s.rhai" >>"$DIR/r.t"; cp "$DIR/out" "$DIR/r.out"
        fi
        cmp -s "$DIR/r.out" "$DIR/p.out" || { echo "scripting.sh: $s printed different output" >&2; diff "$DIR/r.out" "$DIR/p.out" >&2; exit 1; }
    done
    r=$(median <"$DIR/r.t") p=$(median <"$DIR/p.t")
    printf '| %s | %s | %s | %s |\n' "$s" "$r" "$p" "$(awk -v r="$r" -v p="$p" 'BEGIN {printf "%.2fx", r / p}')"
done
