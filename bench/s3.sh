#!/usr/bin/env bash
# Benchmark poolsync against rclone syncing into the same Garage, in the same run.
#
#   bench/s3.sh [--kind small|tiny] [--runs N]
#
# Starts its own single Garage node (tests/garage.sh with POOLSYNC_GARAGE_DIR
# below the scratch folder and POOLSYNC_GARAGE_PORT=4900, so it never touches
# the test servers) and stops it at the end.
#
# Dataset: bench/make_dataset.py KIND (default small: 100,000 items of 1-8 KiB
# in 1,000 folders, ~440 MiB) on the local disk, as pool a's PresenceFocus data.
# Pool b is a prefix of a Garage bucket; poolsync syncs the pair (module
# PresenceFocus) and so writes a's data into b's replica. rclone syncs the same
# folder to another prefix of the same bucket.
#
# Scenarios, each run (N runs; medians reported):
#   initial    an empty destination prefix
#   change1pct after make_dataset.py change (1% modified, 0.5% added, 0.5% deleted);
#              reverted (and synced, untimed) after the run
#   nochange   nothing to do
# Both tools use 8 transfers at once: poolsync's default transfer_parallelism,
# and rclone --transfers 8 --checkers 8 (its default is 4 transfers).
# Requests are counted by Garage itself (api_s3_request_counter on its admin
# /metrics), per command. After every sync the destination's object count is
# checked against the source.
#
# Environment: POOLSYNC (the binary; default target/release/poolsync), BENCH_DIR
# (scratch; default a new /tmp/poolsync-s3-bench.XXXXXX).
# Output: a Markdown table on stdout, every run in BENCH_DIR/results.tsv.
set -euo pipefail
export LC_ALL=C
umask 022

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
KIND=small
RUNS=3
while [[ $# -gt 0 ]]; do
    case $1 in
    --kind) KIND=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: bench/s3.sh [--kind small|tiny] [--runs N]" >&2; exit 2 ;;
    esac
done
POOLSYNC=${POOLSYNC:-$ROOT/target/release/poolsync}
[[ -x $POOLSYNC ]] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v rclone >/dev/null || { echo "rclone is missing: apt-get install rclone" >&2; exit 2; }
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/poolsync-s3-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
log() { echo "[s3-bench] $*" >&2; }

export POOLSYNC_GARAGE_DIR=$BENCH_DIR/garage POOLSYNC_GARAGE_PORT=4900 POOLSYNC_GARAGE_SINGLE=1
"$ROOT/tests/garage.sh" start
trap '"$ROOT/tests/garage.sh" stop' EXIT
# shellcheck disable=SC1091
source "$POOLSYNC_GARAGE_DIR/env"
BUCKET=$POOLSYNC_S3_BENCH_BUCKET

export RCLONE_CONFIG_GARAGE_TYPE=s3 RCLONE_CONFIG_GARAGE_PROVIDER=Other
export RCLONE_CONFIG_GARAGE_ENDPOINT=$POOLSYNC_S3_ENDPOINT RCLONE_CONFIG_GARAGE_REGION=garage
export RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID=$POOLSYNC_S3_ACCESS_KEY_ID
export RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY=$POOLSYNC_S3_SECRET_ACCESS_KEY
export RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE=true

requests() {
    curl -s "$POOLSYNC_S3_ADMIN/metrics" |
        awk '/^api_s3_request_counter/ { n += $NF } END { print n + 0 }'
}

SRC=$BENCH_DIR/stores/a.bench.com/data/UserServices.PresenceFocus
if [[ ! -d $SRC ]]; then
    log "generating the $KIND dataset"
    python3 "$HERE/make_dataset.py" generate "$KIND" "$SRC"
fi
ITEMS=$(find "$SRC" -type f | wc -l)
mkdir -p "$BENCH_DIR/stores/a.bench.com"
printf '[endpoints."%s"]\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' \
    "$POOLSYNC_S3_ENDPOINT" "$POOLSYNC_S3_ACCESS_KEY_ID" "$POOLSYNC_S3_SECRET_ACCESS_KEY" >"$BENCH_DIR/s3.credentials"
chmod 600 "$BENCH_DIR/s3.credentials"

deployment() { # deployment RUN
    pair_deployment "stores/a.bench.com" \
        "s3://$BUCKET/poolsync-$1/b?endpoint=$POOLSYNC_S3_ENDPOINT&region=garage" \
        's3_credentials = "s3.credentials"' >"$BENCH_DIR/deployment-$1.toml"
}

RESULTS=$BENCH_DIR/results.tsv
printf 'run\tscenario\ttool\tseconds\trequests\tobjects\n' >"$RESULTS"

# timed RUN SCENARIO TOOL CMD... : runs CMD, records seconds and requests
timed() {
    local run=$1 scenario=$2 tool=$3
    shift 3
    local before after start end
    before=$(requests)
    start=$EPOCHREALTIME
    "$@" >"$BENCH_DIR/last.out" 2>"$BENCH_DIR/last.err" || {
        log "$tool $scenario failed:"
        cat "$BENCH_DIR/last.err" >&2
        exit 1
    }
    end=$EPOCHREALTIME
    after=$(requests)
    local dest
    if [[ $tool == poolsync ]]; then
        dest=garage:$BUCKET/poolsync-$run/b/backup/a.bench.com/UserServices.PresenceFocus
    else
        dest=garage:$BUCKET/rclone-$run
    fi
    local objects
    objects=$(env -u AWS_CA_BUNDLE rclone lsf -R --files-only "$dest" | wc -l)
    local want
    want=$(find "$SRC" -type f | wc -l)
    if [[ $objects -ne $want ]]; then
        log "MISMATCH: $tool $scenario left $objects objects, the source has $want"
        exit 1
    fi
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scenario" "$tool" "$secs" $((after - before)) "$objects" >>"$RESULTS"
    log "run $run $scenario $tool: ${secs}s, $((after - before)) requests"
}

poolsync_sync() { # RUN
    "$POOLSYNC" --deployment "$BENCH_DIR/deployment-$1.toml" \
        -c 'invoke_backup_service_sync("a.bench.com", #{module: "PresenceFocus"}).items_copied'
}
rclone_sync() { # RUN
    env -u AWS_CA_BUNDLE rclone sync "$SRC" "garage:$BUCKET/rclone-$1" --transfers 8 --checkers 8
}

for run in $(seq 1 "$RUNS"); do
    deployment "$run"
    # Alternate who goes first.
    if ((run % 2)); then order=(poolsync rclone); else order=(rclone poolsync); fi
    for tool in "${order[@]}"; do timed "$run" initial "$tool" "${tool}_sync" "$run"; done
    python3 "$HERE/make_dataset.py" change "$KIND" "$SRC"
    for tool in "${order[@]}"; do timed "$run" change1pct "$tool" "${tool}_sync" "$run"; done
    for tool in "${order[@]}"; do timed "$run" nochange "$tool" "${tool}_sync" "$run"; done
    python3 "$HERE/make_dataset.py" revert "$KIND" "$SRC"
    for tool in poolsync rclone; do "${tool}_sync" "$run" >/dev/null 2>&1; done
done

echo "## poolsync vs rclone into Garage ($KIND: $ITEMS items, $RUNS runs, medians)"
echo
echo "| scenario | poolsync s | rclone s | rclone ÷ poolsync (time) | poolsync requests | rclone requests |"
echo "|---|---|---|---|---|---|"
for scenario in initial change1pct nochange; do
    awk -F'\t' -v s="$scenario" '
        function median(a, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $2 == s && $3 == "poolsync" { p[++np] = $4; pr[++npr] = $5 }
        $2 == s && $3 == "rclone" { r[++nr] = $4; rr[++nrr] = $5 }
        END {
            mp = median(p, np); mr = median(r, nr)
            printf "| %s | %.2f | %.2f | %.2f× | %d | %d |\n", s, mp, mr, mr / mp, median(pr, npr), median(rr, nrr)
        }' "$RESULTS"
done
