#!/usr/bin/env bash
# Recovery times of a 100,000-item pool: a disaster failover, a planned
# failover (the final sync of a 1% change included), and a failback of a 1%
# change made at the active copy, each against the manual step it replaces,
# in the same run, as ratios.
#
#   bench/failover.sh [--runs N] [--smoke]
#
#   --runs N   timed rounds (default 5); medians are reported
#   --smoke    the 1,000-item dataset and one round: a check of the harness
#
# The pool is b.bench.com (a.bench.com hosts the CMS, which a failover of its
# pool refuses), its store stores/b, its partner's stores/a. Each round:
#   planned    1% of b's items change (make_dataset.py change); timed:
#              invoke_pool_failover(b), which ships them and promotes a's
#              replica in place. Peer: rsync -a --delete of the changed data
#              into a copy of the replica (the final sync a manual failover
#              needs before it can even start copying).
#   failback   1% of the active copy changes (make_dataset.py revert); timed:
#              invoke_pool_failback(b). Peer: rsync -a --delete of the active
#              copy back into a copy of b's data as it was.
#   disaster   timed: invoke_pool_failover(b, #{disaster_mode: true}). Peer:
#              cp -a of the replica into place (the manual restore this
#              replaces). A failback (untimed) ends the round.
# Of each pair of timed steps, the peer runs first in odd rounds and poolsync
# first in even ones. After each failback the pool's data and its replica are
# compared (diff -r).
# Wall times from $EPOCHREALTIME around the whole command (process start and
# deployment load included), after a `sync -f` of the scratch file system;
# poolsync's own duration_ms is reported too.
set -euo pipefail
export LC_ALL=C
umask 022

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_rounds_args "$@"
[[ ${#ARGS[@]} -eq 0 ]] || bench_unknown "${ARGS[0]}"
bench_poolsync
bench_need rsync python3 diff sync

DIR=$(mktemp -d /tmp/poolsync-failover.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export XDG_DATA_HOME=$DIR/xdg XDG_CONFIG_HOME=$DIR/xdg
MODULE=UserServices.PresenceFocus
B_DATA=$DIR/stores/b/data/$MODULE
ACTIVE=$DIR/stores/a/backup/b.bench.com/$MODULE
mkdir -p "$DIR/stores/a/data/$MODULE" "$DIR/peers"
pair_deployment "$DIR/stores/a" "$DIR/stores/b" >"$DIR/deployment.toml"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
ps() { "$POOLSYNC" --deployment "$DIR/deployment.toml" "$@"; }
# timed NAME -- COMMAND...: appends NAME's wall seconds to $DIR/NAME.times
timed() {
    local name=$1 t0 t1
    shift 2
    # Dirty pages of the step before (cp -a writes 100,000 files) are
    # flushed first, so that no step pays for another's writeback.
    sync -f "$DIR"
    t0=$EPOCHREALTIME
    "$@" >"$DIR/last.out"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >>"$DIR/$name.times"
}
median() { sort -n "$DIR/$1.times" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

log "dataset $KIND into b's data"
python3 "$HERE/make_dataset.py" generate "$KIND" "$B_DATA"
ps -c 'invoke_backup_service_sync("b.bench.com")' >/dev/null
# The steps, poolsync's (ours_STEP) and its peer's (peer_STEP).
ours_planned() { ps -c 'invoke_pool_failover("b.bench.com").duration_ms'; }
peer_planned() { rsync -a --delete "$B_DATA/" "$DIR/peers/replica/"; }
ours_failback() { ps -c 'invoke_pool_failback("b.bench.com").duration_ms'; }
peer_failback() { rsync -a --delete "$ACTIVE/" "$DIR/peers/home/"; }
ours_disaster() { ps -c 'invoke_pool_failover("b.bench.com", #{disaster_mode: true}).duration_ms'; }
peer_disaster() { cp -a "$ACTIVE" "$DIR/peers/restored"; }
# step STEP PEER_NAME: times poolsync's STEP and its peer (recorded as
# PEER_NAME), the peer first in odd rounds and poolsync first in even ones,
# so that neither always finds the other's reads in the page cache
step() {
    local side order="peer ours"
    ((round % 2)) || order="ours peer"
    for side in $order; do
        if [[ $side == peer ]]; then
            timed "$2" -- "peer_$1"
        else
            timed "$1" -- "ours_$1"
            cat "$DIR/last.out" >>"$DIR/$1.ms"
        fi
    done
}

for round in $(seq 1 "$RUNS"); do
    log "round $round: planned failover of a 1% change"
    rm -rf "$DIR/peers/replica" && cp -a "$ACTIVE" "$DIR/peers/replica"
    python3 "$HERE/make_dataset.py" change "$KIND" "$B_DATA"
    step planned rsync_planned

    log "round $round: failback of a 1% change at the active copy"
    rm -rf "$DIR/peers/home" && cp -a "$B_DATA" "$DIR/peers/home"
    python3 "$HERE/make_dataset.py" revert "$KIND" "$ACTIVE"
    step failback rsync_failback
    diff -r "$B_DATA" "$ACTIVE" >/dev/null || bench_fail "home and replica differ after the failback"

    log "round $round: disaster failover"
    rm -rf "$DIR/peers/restored"
    step disaster cp_disaster
    ps -c 'invoke_pool_failback("b.bench.com")' >/dev/null
    diff -r "$B_DATA" "$ACTIVE" >/dev/null || bench_fail "home and replica differ after the disaster failback"
done
items=$(find "$B_DATA" -type f | wc -l)
ms_median() { sort -n "$DIR/$1.ms" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "| step ($items items, $RUNS rounds, medians) | poolsync wall s | poolsync duration_ms | peer | peer wall s | peer / poolsync |"
echo "|---|--:|--:|---|--:|--:|"
for row in "disaster:cp_disaster:cp -a of the replica" "planned:rsync_planned:rsync -a --delete of the 1% change" "failback:rsync_failback:rsync -a --delete back home"; do
    IFS=: read -r ours peer what <<<"$row"
    o=$(median "$ours") p=$(median "$peer")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$ours" "$o" "$(ms_median "$ours")" "$what" "$p" \
        "$(awk -v o="$o" -v p="$p" 'BEGIN {printf "%.2fx", p / o}')"
done
