#!/usr/bin/env bash
# Two poolsync binaries on the same 100,000-item pool, in the same run: a sync
# with nothing changed and a sync after a 1% change, as medians and NEW/OLD
# ratios, with rsync -a --delete of the same change for reference.
#
#   bench/compare.sh [--runs N] [--smoke] OLD NEW
#
#   OLD, NEW   two poolsync binaries (say, release builds of two commits)
#   --runs N   timed rounds (default 5); medians are reported
#   --smoke    the 1,000-item dataset and one round: a check of the harness
#
# The small dataset (bench/make_dataset.py) is generated once and copied, the
# same way, into each binary's own pair of stores (bench/lib.sh's
# pair_deployment), so neither reads the other's manifests and neither source
# is laid out on disk differently (a generated tree and its copy are not: give
# one binary as both OLD and NEW to see the noise of a run); rsync copies NEW's
# source into a folder of its own. An untimed first sync fills all three. Each round then times OLD, NEW
# and rsync (OLD first in odd rounds, NEW first in even ones):
#   nochange   a sync with nothing to do
#   change1pct a sync after make_dataset.py change (1% of the items modified,
#              0.5% added, 0.5% deleted) made to both sources; the change is
#              then reverted and synced, untimed.
# poolsync's counts are checked after every timed sync, and every destination
# is compared with its source (diff -r) at the end. Wall time is taken around
# the whole command with $EPOCHREALTIME, after a `sync -f` of the scratch file
# system; caches are warm. "per-round NEW/OLD" is the range of the ratio of the
# two runs of one round, which ran seconds apart: the spread shows the noise.
#
# Environment:
#   BENCH_DIR  scratch directory, kept afterwards, with each run's stderr in
#              logs/ (run with POOLSYNC_LOG=debug for the engine's step times);
#              default: a new /tmp/poolsync-compare.XXXXXX, deleted at the end
set -euo pipefail
export LC_ALL=C
umask 022 # poolsync refuses a deployment file or folder that others can write

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_rounds_args "$@"
BINS=("${ARGS[@]}")
[[ ${#BINS[@]} -eq 2 ]] || bench_fail "needs two poolsync binaries, OLD and NEW (try --help)"
declare -A BIN=([old]=${BINS[0]} [new]=${BINS[1]})
for side in old new; do
    [[ -x ${BIN[$side]} ]] || bench_fail "${side^^} '${BIN[$side]}' is not an executable file: give a poolsync binary"
done
bench_need rsync python3 diff sync

if [[ -n ${BENCH_DIR:-} ]]; then
    mkdir -p "$BENCH_DIR"
    DIR=$(cd "$BENCH_DIR" && pwd)
else
    DIR=$(mktemp -d /tmp/poolsync-compare.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
fi
export XDG_DATA_HOME=$DIR/xdg XDG_CONFIG_HOME=$DIR/xdg
unset POOLSYNC_DEPLOYMENT
MODULE=UserServices.PresenceFocus
TIMES=$DIR/times.tsv
mkdir -p "$DIR/logs"
: >"$TIMES"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
src() { echo "$DIR/$1/stores/a/data/$MODULE"; }
dst() { echo "$DIR/$1/stores/b/backup/a.bench.com/$MODULE"; }
SYNC='let r = invoke_backup_service_sync("a.bench.com", #{module: "PresenceFocus"}); `${r.items_copied} ${r.items_deleted}`'

# run SIDE: one sync of a pair (SIDE old or new), or rsync's copy (SIDE rsync)
run() {
    if [[ $1 == rsync ]]; then
        rsync -a --delete "$(src new)/" "$DIR/rsync/"
    else
        "${BIN[$1]}" --deployment "$DIR/$1/deployment.toml" -c "$SYNC"
    fi
}

# timed SCENARIO ROUND SIDE EXPECTED: one timed run, its wall seconds appended
# to $TIMES; poolsync must report EXPECTED ("copied deleted")
timed() {
    local sc=$1 round=$2 side=$3 want=$4 err=$DIR/logs/$1.$3.$2.err t0 t1
    sync -f "$DIR"
    t0=$EPOCHREALTIME
    run "$side" >"$DIR/out" 2>"$err" || bench_fail "$sc $side round $round failed: $(head -c 300 "$err")"
    t1=$EPOCHREALTIME
    [[ $side == rsync || $(<"$DIR/out") == "$want" ]] ||
        bench_fail "$sc $side round $round: copied and deleted '$(<"$DIR/out")', expected '$want'"
    printf '%s\t%s\t%s\t%s\n' "$sc" "$side" "$round" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" >>"$TIMES"
}

# dataset change|revert: on both sources, in a later second than the last
# change (rsync's quick check compares whole seconds; see run.sh)
LAST_WRITE=0
dataset() {
    while ((${EPOCHREALTIME%.*} <= LAST_WRITE)); do sleep 0.1; done
    python3 "$HERE/make_dataset.py" "$1" "$KIND" "$(src old)"
    python3 "$HERE/make_dataset.py" "$1" "$KIND" "$(src new)"
    LAST_WRITE=${EPOCHREALTIME%.*}
}

read -r ITEMS MODIFIED ADDED DELETED < <(python3 "$HERE/make_dataset.py" info "$KIND" |
    python3 -c 'import json, sys; i = json.load(sys.stdin); print(i["items"], i["modified"], i["added"], i["deleted"])')
CHANGED="$((MODIFIED + ADDED)) $DELETED"
log "$KIND dataset ($ITEMS items) into $DIR"
python3 "$HERE/make_dataset.py" generate "$KIND" "$DIR/dataset"
LAST_WRITE=${EPOCHREALTIME%.*}
for side in old new; do
    mkdir -p "$DIR/$side/stores/a/data" "$DIR/$side/stores/b"
    cp -a "$DIR/dataset" "$(src "$side")"
    pair_deployment stores/a stores/b >"$DIR/$side/deployment.toml"
    log "first sync of ${side^^} (${BIN[$side]}), untimed"
    run "$side" >/dev/null
done
run rsync

for ((round = 1; round <= RUNS; round++)); do
    order="old new rsync"
    ((round % 2)) || order="rsync new old"
    log "round $round of $RUNS: $order"
    for side in $order; do timed nochange "$round" "$side" "0 0"; done
    dataset change
    for side in $order; do timed change1pct "$round" "$side" "$CHANGED"; done
    dataset revert
    for side in old new rsync; do run "$side" >/dev/null; done
done
for side in old new; do diff -rq "$(src "$side")" "$(dst "$side")" || bench_fail "${side^^}'s copy differs from its source"; done
diff -rq "$(src new)" "$DIR/rsync" || bench_fail "rsync's copy differs from its source"

echo "| $ITEMS items, $RUNS rounds, medians | OLD s | NEW s | NEW / OLD | per-round NEW / OLD | rsync s | rsync / NEW |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
awk -F'\t' '
    function median(list,   v, n, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { t[$1, $2] = t[$1, $2] " " $4; w[$1, $2, $3] = $4; rounds = $3 }
    END {
        split("nochange change1pct", scs, " ")
        for (s = 1; s <= 2; s++) {
            sc = scs[s]; lo = 1e9; hi = 0
            for (r = 1; r <= rounds; r++) { q = w[sc, "new", r] / w[sc, "old", r]; if (q < lo) lo = q; if (q > hi) hi = q }
            o = median(t[sc, "old"]); n = median(t[sc, "new"]); p = median(t[sc, "rsync"])
            printf "| %s | %.3f | %.3f | %.2f | %.2f-%.2f | %.3f | %.2f |\n", sc, o, n, n / o, lo, hi, p, p / n
        }
    }' "$TIMES"
