#!/usr/bin/env bash
# Benchmark poolsync against rsync and cp on the same data, in the same run.
#
#   bench/run.sh [--small-only] [--runs N] [--smoke] [--keep]
#
#   --small-only  only the 100,000-small-items dataset (skip the ~1 GiB one)
#   --runs N      timed runs per tool and scenario (default 5); the reported
#                 figure is the median; one untimed warm-up run comes first
#   --smoke       a quick check of the harness itself: a 1,000-item dataset, 1 run
#   --keep        keep the scratch directory (datasets, stores, logs) afterwards
#
# Environment:
#   POOLSYNC   the poolsync binary (default: $CARGO_TARGET_DIR/release/poolsync,
#              else target/release/poolsync of this repository)
#   BENCH_QUIET_WAIT, BENCH_QUIET_MAX
#              before each timed run, wait up to BENCH_QUIET_WAIT seconds
#              (default 60; 0: don't wait) for a second in which the rest of
#              the machine uses less than BENCH_QUIET_MAX cores (default 0.3).
#              The CPU the rest of the machine used during each run is recorded
#              either way (column background_cores of results.tsv).
#   BENCH_DIR  scratch directory (default: a new /tmp/poolsync-bench.XXXXXX).
#              Everything is written below it. Destinations are not deleted
#              during the run (see "trash" below), so it needs about
#              3 x (N+1) + 2 copies of each dataset: with N=5, ~13 GiB for the
#              small dataset and ~21 GiB for the large one, ~34 GiB in all.
#
# Datasets (bench/make_dataset.py, fixed seed, incompressible content):
#   small   100,000 items of 1-8 KiB in 1,000 folders (~440 MiB), module PresenceFocus
#   large   2,000 items, 1 GiB: six of 50-150 MiB, the rest 1.5 KiB-1.5 MiB, module DataConf
#
# Scenarios, for each dataset. All tools read the same source tree (poolsync's
# stores/a/data/<module>) and write a destination on the same file system
# (poolsync: stores/b/backup/a.bench.com/<module>; rsync and cp: peers/<tool>):
#   initial    destination empty (poolsync: fresh stores/b, no .poolsync in
#              either store). Each round moves every tool's previous
#              destination aside (see "trash" below), then times each tool in turn.
#   change1pct every tool starts in sync; then 1% of the items are modified in
#              place, 0.5% added and 0.5% deleted (make_dataset.py change), once,
#              and each tool's sync is timed. The change is then undone and
#              synced, untimed, before the next round. cp -a: n/a.
#   nochange   a sync with nothing to do (cp -a: n/a)
# The order of the tools rotates from round to round. Round 0 is an untimed
# warm-up (recorded as run 0 and left out of the medians).
#
# Per run, GNU time gives user and system CPU, peak RSS and "File system
# outputs" (512-byte blocks the process tree dirtied: the bytes written).
# Wall time is taken around the command with $EPOCHREALTIME. Before each timed
# run `sync -f` flushes the scratch file system so no tool pays for another's
# dirty pages; right after it, a second `sync -f` is timed and reported as the
# flush time (poolsync already syncfs'd; cp and rsync leave their writes in the
# page cache). Caches cannot be dropped without root: all figures are warm cache.
# After every initial and change1pct run the destination is compared with the
# source (diff -r), and poolsync's reported counts are checked against the
# change set. Any mismatch is reported and makes the script exit with status 1.
#
# Output: Markdown tables on stdout (also BENCH_DIR/report.md), every run in
# BENCH_DIR/results.tsv, progress on stderr.
set -euo pipefail
export LC_ALL=C
umask 022 # poolsync refuses a deployment file or folder that others can write

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
REPO=$(dirname "$HERE")

RUNS=5
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
QUIET_MAX=${BENCH_QUIET_MAX:-0.3}
SMALL_ONLY=0
SMOKE=0
KEEP=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --small-only) SMALL_ONLY=1 ;;
    --runs)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs needs a positive number" >&2; exit 2; }
        RUNS=$2
        shift
        ;;
    --runs=*)
        RUNS=${1#--runs=}
        [[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs needs a positive number" >&2; exit 2; }
        ;;
    --smoke) SMOKE=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z ${POOLSYNC:-} ]]; then
    if [[ -n ${CARGO_TARGET_DIR:-} && -x $CARGO_TARGET_DIR/release/poolsync ]]; then
        POOLSYNC=$CARGO_TARGET_DIR/release/poolsync
    else
        POOLSYNC=$REPO/target/release/poolsync
    fi
fi
[[ -x $POOLSYNC ]] || { echo "run.sh: no poolsync binary at $POOLSYNC: build it with 'cargo build --release' or set POOLSYNC" >&2; exit 2; }
for tool in rsync python3 diff sync; do
    command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is missing (apt-get install -y rsync python3 diffutils coreutils)" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] && /usr/bin/time -f %M true >/dev/null 2>&1 ||
    { echo "run.sh: GNU time is missing at /usr/bin/time (apt-get install -y time)" >&2; exit 2; }

if [[ -n ${BENCH_DIR:-} ]]; then
    mkdir -p "$BENCH_DIR"
else
    BENCH_DIR=$(mktemp -d /tmp/poolsync-bench.XXXXXX)
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RESULTS=$BENCH_DIR/results.tsv
TRASH=$BENCH_DIR/trash
mkdir -p "$TRASH"
LOGS=$BENCH_DIR/logs
mkdir -p "$LOGS"
export XDG_DATA_HOME=$BENCH_DIR/xdg/data XDG_CONFIG_HOME=$BENCH_DIR/xdg/config
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME"
unset POOLSYNC_DEPLOYMENT

FAILURES=0
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
problem() {
    FAILURES=$((FAILURES + 1))
    printf '[%(%H:%M:%S)T] PROBLEM: %s\n' -1 "$*" >&2
    printf '%s\n' "$*" >>"$BENCH_DIR/problems.txt"
}
fsync_scratch() { sync -f "$BENCH_DIR"; }

# ---------------------------------------------------------------- machine
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -srm)"
    echo "nproc: $(nproc)"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
    echo "scratch: $BENCH_DIR"
    echo "scratch fs: $(df -T "$BENCH_DIR" | awk 'NR == 2 {print $2 " on " $1 ", " $5 " free"}')"
    echo "poolsync: $POOLSYNC ($("$POOLSYNC" --version 2>/dev/null | head -1), built $(date -u -r "$POOLSYNC" +%Y-%m-%dT%H:%M:%SZ))"
    echo "repository HEAD at run time: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (src has uncommitted changes)')"
    echo "rsync: $(rsync --version | head -1)"
    echo "cp: $(cp --version | head -1)"
    echo "time: $(/usr/bin/time --version 2>&1 | head -1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$BENCH_DIR/machine.txt"
log "scratch directory: $BENCH_DIR"
sed 's/^/  /' "$BENCH_DIR/machine.txt" >&2
printf 'dataset\tscenario\ttool\trun\twall_s\tuser_s\tsys_s\tmaxrss_kb\tfs_out_blocks\tflush_s\tbackground_cores\tnote\n' >"$RESULTS"

# ---------------------------------------------------------------- a shared machine
# busy_jiffies: CPU time (in 1/100 s) the whole machine has spent busy so far.
busy_jiffies() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}

# wait_quiet: before a timed run, wait (up to $QUIET_WAIT seconds) for a second
# in which the rest of the machine uses less than $QUIET_MAX cores, so a run
# does not start in the middle of someone else's build. Sampling costs no CPU.
wait_quiet() {
    local waited=0 a b
    while ((waited < QUIET_WAIT)); do
        a=$(busy_jiffies)
        sleep 1
        b=$(busy_jiffies)
        if awk -v d=$((b - a)) -v m="$QUIET_MAX" 'BEGIN {exit !(d / 100 < m)}'; then
            return 0
        fi
        waited=$((waited + 1))
    done
    log "  (the machine did not go quiet within ${QUIET_WAIT}s; running anyway)"
}

# ---------------------------------------------------------------- one timed run
# measure DATASET SCENARIO TOOL RUN -- COMMAND...   (RUN 0 is the warm-up)
# Leaves the command's stdout in $LAST_OUT.
LAST_OUT=
measure() {
    local ds=$1 sc=$2 tool=$3 run=$4
    shift 5
    local base=$LOGS/$ds.$sc.$tool.$run
    local timef=$base.time
    LAST_OUT=$base.out
    fsync_scratch
    wait_quiet
    local t0 t1 t2 j0 j1 rc=0
    j0=$(busy_jiffies)
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%e %U %S %M %O' -o "$timef" "$@" >"$LAST_OUT" 2>"$base.err" || rc=$?
    t1=$EPOCHREALTIME
    j1=$(busy_jiffies)
    fsync_scratch
    t2=$EPOCHREALTIME
    local note=
    if [[ $rc -ne 0 ]]; then
        problem "$ds $sc $tool run $run: exit status $rc: $(head -c 600 "$base.err")"
        note="exit $rc"
    elif grep -q . "$base.err"; then
        note="stderr: $(head -1 "$base.err" | cut -c1-80)"
    fi
    local e u s m o
    read -r e u s m o < <(tail -1 "$timef")
    # The CPU the rest of the machine used during the run, in cores.
    local other
    other=$(awk -v j=$((j1 - j0)) -v u="$u" -v s="$s" -v a="$t0" -v b="$t1" \
        'BEGIN {o = j / 100 - u - s; if (o < 0) o = 0; printf "%.2f", (b > a) ? o / (b - a) : 0}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" "$sc" "$tool" "$run" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" "$u" "$s" "$m" "$o" \
        "$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}')" "$other" "$note" >>"$RESULTS"
    log "  $sc $tool run $run: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')s wall, ${u}+${s}s cpu, $((m / 1024)) MiB rss, $((o / 2048)) MiB written, background ${other} cores${note:+ ($note)}"
}

# ---------------------------------------------------------------- the tools
# Per dataset: D (its directory), SRC (the source tree, which is poolsync's
# stores/a/data/<module>), and one destination per tool.
setup_dataset() {
    DS=$1 KIND=$2 MODULE=$3 SHORT=$4
    D=$BENCH_DIR/$DS
    trash "$D"
    mkdir -p "$D/stores/a/data" "$D/stores/b" "$D/peers"
    SRC=$D/stores/a/data/$MODULE
    PS_DST=$D/stores/b/backup/a.bench.com/$MODULE
    RS_DST=$D/peers/rsync
    CP_DST=$D/peers/cp
    pair_deployment stores/a stores/b >"$D/deployment.toml"
    python3 "$HERE/make_dataset.py" info "$KIND" >"$BENCH_DIR/$DS.info.json"
    info() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$BENCH_DIR/$DS.info.json" "$1"; }
    N_ITEMS=$(info items) N_MOD=$(info modified) N_ADD=$(info added) N_DEL=$(info deleted)
    log "$DS: generating $N_ITEMS items ($(($(info bytes) / 1048576)) MiB) in $SRC"
    python3 "$HERE/make_dataset.py" generate "$KIND" "$SRC"
    LAST_MODIFY_SECOND=${EPOCHREALTIME%.*}
    log "$DS: source on disk: $(du -sh "$SRC" | cut -f1)"
}

PS_EXPR='let r = invoke_backup_service_sync("a.bench.com", #{module: "SHORT"}); `${r.items_copied} ${r.items_deleted} ${r.bytes_copied}`'

# Trash: a destination is never deleted during the run, only moved aside, and
# everything is deleted at the very end. On ext4 without a journal (the
# machine these figures come from) the kernel will not reuse an inode freed less
# than 60 s ago, or 360 s if its inode-table block is dirty again, which it is
# as soon as new files are created next to it (recently_deleted() in
# fs/ext4/ialloc.c). Every file created after a mass delete then scans past the
# freed inodes: in a first attempt that deleted the previous round's trees,
# cp, rsync and poolsync all spent 3-8x more system time creating files, by
# amounts that depended on what had been deleted just before.
TRASH_N=0
trash() {
    local p
    for p in "$@"; do
        if [[ -e $p ]]; then
            TRASH_N=$((TRASH_N + 1))
            mv "$p" "$TRASH/$TRASH_N"
        fi
    done
}
reset_poolsync() { trash "$D/stores/b" "$D/stores/a/.poolsync" && mkdir "$D/stores/b"; }
reset_rsync() { trash "$RS_DST"; }
reset_cp() { trash "$CP_DST"; }

# run_tool SCENARIO TOOL RUN: one measured sync
run_tool() {
    local sc=$1 tool=$2 run=$3
    case $tool in
    poolsync) measure "$DS" "$sc" poolsync "$run" -- "$POOLSYNC" --deployment "$D/deployment.toml" -c "${PS_EXPR/SHORT/$SHORT}" ;;
    rsync) measure "$DS" "$sc" rsync "$run" -- rsync -a --delete "$SRC/" "$RS_DST/" ;;
    cp) measure "$DS" "$sc" cp "$run" -- cp -a "$SRC" "$CP_DST" ;;
    esac
}

# sync_untimed TOOL: bring a tool's destination back in sync (after a revert)
sync_untimed() {
    case $1 in
    poolsync)
        "$POOLSYNC" --deployment "$D/deployment.toml" -c "${PS_EXPR/SHORT/$SHORT}" >"$LOGS/untimed.out" 2>"$LOGS/untimed.err" ||
            problem "$DS untimed poolsync sync failed: $(head -c 600 "$LOGS/untimed.err")"
        ;;
    rsync) rsync -a --delete "$SRC/" "$RS_DST/" ;;
    esac
}

dst_of() {
    case $1 in
    poolsync) echo "$PS_DST" ;;
    rsync) echo "$RS_DST" ;;
    cp) echo "$CP_DST" ;;
    esac
}

# verify SCENARIO TOOL RUN: destination equals source
verify() {
    local dst
    dst=$(dst_of "$2")
    if ! diff -rq --no-dereference "$SRC" "$dst" >"$LOGS/diff.out" 2>&1; then
        problem "$DS $1 $2 run $3: destination differs from source ($(wc -l <"$LOGS/diff.out") lines, e.g. $(head -2 "$LOGS/diff.out" | tr '\n' ' '))"
    fi
}

# check_counts LABEL COPIED DELETED [FILE]: poolsync printed "copied deleted bytes"
check_counts() {
    local label=$1 want_c=$2 want_d=$3 file=${4:-$LAST_OUT}
    local got_c got_d got_b
    read -r got_c got_d got_b <"$file" || true
    if [[ ${got_c:-} != "$want_c" || ${got_d:-} != "$want_d" ]]; then
        problem "$DS $label: poolsync reported items_copied=${got_c:-?} items_deleted=${got_d:-?}, expected $want_c and $want_d"
    fi
}

# rsync's quick check compares modification times in whole seconds only (it
# preserves nanoseconds but ignores them): a same-size rewrite in the same second
# as the previous write of that file is skipped. Every modify step (change,
# revert) therefore starts in a later second than the one before ended, so
# rsync sees every change and the comparison is fair to it.
LAST_MODIFY_SECOND=0
next_second() {
    local now=${EPOCHREALTIME%.*}
    while ((now <= LAST_MODIFY_SECOND)); do
        sleep 0.1
        now=${EPOCHREALTIME%.*}
    done
}

rotate() { # rotate K WORDS...: the words rotated left by K
    local k=$1
    shift
    local n=$#
    local -a w=("$@")
    for ((i = 0; i < n; i++)); do echo "${w[(i + k) % n]}"; done
}

# need_space GIB: refuse to start a dataset that would fill the disk
need_space() {
    local free_kib
    free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 {print $4}')
    if ((free_kib < $1 * 1048576)); then
        echo "run.sh: $DS needs about $1 GiB free in $BENCH_DIR (moved-aside trees are deleted only at the end); $((free_kib / 1048576)) GiB free" >&2
        exit 2
    fi
}

bench_dataset() {
    setup_dataset "$@"
    case $KIND in
    small) need_space $((3 * (RUNS + 1) * 7 / 10 + 2)) ;;
    large) need_space $((3 * (RUNS + 1) * 11 / 10 + 3)) ;;
    esac
    local r tool

    # One round = every tool's previous destination moved aside, then each tool
    # timed in turn (the order rotates from round to round).
    log "$DS: initial sync (warm-up round, then $RUNS rounds)"
    for ((r = 0; r <= RUNS; r++)); do
        for tool in poolsync rsync cp; do "reset_$tool"; done
        for tool in $(rotate $((r % 3)) poolsync rsync cp); do
            run_tool initial "$tool" "$r"
            if [[ $tool == poolsync ]]; then check_counts "initial run $r" "$N_ITEMS" 0; fi
        done
        for tool in poolsync rsync cp; do verify initial "$tool" "$r"; done
    done
    reset_cp

    log "$DS: sync after a 1% change (warm-up round, then $RUNS rounds)"
    for ((r = 0; r <= RUNS; r++)); do
        next_second
        python3 "$HERE/make_dataset.py" change "$KIND" "$SRC"
        LAST_MODIFY_SECOND=${EPOCHREALTIME%.*}
        for tool in $(rotate $((r % 2)) poolsync rsync); do
            run_tool change1pct "$tool" "$r"
            if [[ $tool == poolsync ]]; then check_counts "change1pct run $r" $((N_MOD + N_ADD)) "$N_DEL"; fi
        done
        for tool in poolsync rsync; do verify change1pct "$tool" "$r"; done
        next_second
        python3 "$HERE/make_dataset.py" revert "$KIND" "$SRC"
        LAST_MODIFY_SECOND=${EPOCHREALTIME%.*}
        for tool in poolsync rsync; do sync_untimed "$tool"; done
        check_counts "revert after change1pct run $r" $((N_MOD + N_DEL)) "$N_ADD" "$LOGS/untimed.out"
    done

    log "$DS: sync with nothing changed (warm-up round, then $RUNS rounds)"
    for ((r = 0; r <= RUNS; r++)); do
        for tool in $(rotate $((r % 2)) poolsync rsync); do
            run_tool nochange "$tool" "$r"
            if [[ $tool == poolsync ]]; then check_counts "nochange run $r" 0 0; fi
        done
    done
    verify nochange poolsync "$RUNS"
    verify nochange rsync "$RUNS"

    log "$DS: poolsync metadata after the runs: $(du -sh "$D/stores/b/.poolsync" | cut -f1) in stores/b/.poolsync"
    if [[ $KEEP -eq 0 ]]; then trash "$D"; fi
}

if [[ $SMOKE -eq 1 ]]; then
    RUNS=1
    bench_dataset tiny tiny UserServices.PresenceFocus PresenceFocus
else
    bench_dataset small small UserServices.PresenceFocus PresenceFocus
    if [[ $SMALL_ONLY -eq 0 ]]; then
        bench_dataset large large ConfServices.DataConf DataConf
    fi
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$BENCH_DIR/machine.txt"

log "deleting the moved-aside trees ($(du -sh "$TRASH" | cut -f1))"
rm -rf "$TRASH"
python3 "$HERE/report.py" "$BENCH_DIR" | tee "$BENCH_DIR/report.md"
log "results: $RESULTS; report: $BENCH_DIR/report.md"
if [[ $FAILURES -gt 0 ]]; then
    log "$FAILURES problem(s), listed in $BENCH_DIR/problems.txt"
    exit 1
fi
if [[ $KEEP -eq 0 ]]; then rm -rf "$LOGS" "$BENCH_DIR/xdg"; fi
