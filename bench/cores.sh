#!/usr/bin/env bash
# How the 1% change scales with cores: poolsync and rsync, each pinned to one
# core and then given both, in alternation, on the same tree.
#
#   bench/cores.sh [--rounds N] [--cpus LIST]...
#
#   --rounds N   rounds per CPU set (default 6); each round times poolsync and
#                rsync once on a fresh 1% change, then reverts it untimed
#   --cpus LIST  a CPU list for taskset (repeatable; default: "0", then every
#                online CPU)
#
# Environment: POOLSYNC (the binary, as in run.sh), BENCH_DIR (scratch; default
# a new /tmp/poolsync-cores.XXXXXX, about 1.3 GiB).
#
# Prints one line per timed run and the medians per CPU set. This is the
# 100,000-item dataset and the change of bench/run.sh, without its quiet-machine
# wait or GNU time: a check of how each tool uses a second core, not a
# replacement for run.sh's tables.
set -euo pipefail
export LC_ALL=C
umask 022

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=6
CPUS=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --rounds)
        bench_positive --rounds "${2:-}"
        ROUNDS=$2
        shift
        ;;
    --cpus)
        [[ $# -ge 2 ]] || bench_fail "--cpus needs a CPU list, e.g. 0 or 0,1"
        CPUS+=("$2")
        shift
        ;;
    -h | --help) bench_help ;;
    *) bench_unknown "$1" ;;
    esac
    shift
done
[[ ${#CPUS[@]} -gt 0 ]] || CPUS=(0 "$(taskset -pc $$ | sed 's/.*: //')")
bench_poolsync
bench_need rsync python3 taskset

if [[ -n ${BENCH_DIR:-} ]]; then mkdir -p "$BENCH_DIR"; else BENCH_DIR=$(mktemp -d /tmp/poolsync-cores.XXXXXX); fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
cd "$BENCH_DIR"
export XDG_DATA_HOME=$BENCH_DIR/xdg/data XDG_CONFIG_HOME=$BENCH_DIR/xdg/config
unset POOLSYNC_DEPLOYMENT
SRC=stores/a/data/UserServices.PresenceFocus
mkdir -p stores/a/data stores/b peers
pair_deployment stores/a stores/b >deployment.toml
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
poolsync_sync() {
    "$POOLSYNC" --deployment deployment.toml -c 'invoke_backup_service_sync("a.bench.com", #{module: "PresenceFocus"})' >/dev/null
}
rsync_sync() { rsync -a --delete "$SRC/" peers/rsync/; }
if [[ ! -d $SRC ]]; then
    log "generating the small dataset in $BENCH_DIR"
    python3 "$HERE/make_dataset.py" generate small "$SRC"
fi
log "initial copies"
poolsync_sync
rsync_sync
sync -f .

# timed CPUS COMMAND...: seconds the command took, pinned to CPUS.
timed() {
    local cpus=$1 t0
    shift
    t0=$EPOCHREALTIME
    taskset -c "$cpus" "$@"
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}'
}
export -f poolsync_sync rsync_sync
export POOLSYNC SRC
declare -A PS RS
for ((round = 1; round <= ROUNDS; round++)); do
    for cpus in "${CPUS[@]}"; do
        python3 "$HERE/make_dataset.py" change small "$SRC" >/dev/null
        sync -f .
        p=$(timed "$cpus" bash -c poolsync_sync)
        sync -f .
        r=$(timed "$cpus" bash -c rsync_sync)
        printf 'round %d  cpus %-5s  poolsync %s s  rsync %s s  rsync/poolsync %s\n' \
            "$round" "$cpus" "$p" "$r" "$(awk -v p="$p" -v r="$r" 'BEGIN {printf "%.2f", r / p}')"
        PS[$cpus]+="$p "
        RS[$cpus]+="$r "
        python3 "$HERE/make_dataset.py" revert small "$SRC" >/dev/null
        poolsync_sync
        rsync_sync
        sync -f .
    done
done
diff -r "$SRC" peers/rsync >/dev/null || { echo "cores.sh: rsync's copy differs from the source" >&2; exit 1; }
diff -r "$SRC" stores/b/backup/a.bench.com/UserServices.PresenceFocus >/dev/null ||
    { echo "cores.sh: poolsync's replica differs from the source" >&2; exit 1; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo
echo "| CPUs | poolsync (median) | rsync (median) | rsync / poolsync |"
echo "|---|--:|--:|--:|"
for cpus in "${CPUS[@]}"; do
    p=$(median <<<"${PS[$cpus]}")
    r=$(median <<<"${RS[$cpus]}")
    echo "| $cpus | $p s | $r s | $(awk -v p="$p" -v r="$r" 'BEGIN {printf "%.2f", r / p}')× |"
done
