# Sourced by the benchmark scripts: what they share.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# sets HERE (bench/), REPO (the checkout) and BENCH (the script's name, for
# its messages),
# and gives:
#   bench_fail MESSAGE...      says "BENCH: MESSAGE" on stderr, exits 2
#   bench_help                 prints the script's header comment (its --help), exits 0
#   bench_unknown ARG          the error for an argument the script does not take
#   bench_positive OPT N       checks that N, the value of OPT, is a whole number over 0
#   bench_poolsync             sets POOLSYNC ($POOLSYNC, or the release build) and checks it runs
#   bench_need TOOL...         checks each tool is installed
#   pair_deployment A B [LINE] prints the two-pool deployment the benchmarks sync
#   bench_rounds_args ARG...   reads --runs N, --smoke and --help into RUNS (5)
#                              and KIND (small, or tiny with --smoke); the other
#                              arguments go to ARGS
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BENCH=$(basename "${BASH_SOURCE[1]}")

bench_fail() {
    echo "$BENCH: $*" >&2
    exit 2
}

bench_help() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[-1]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
}

bench_unknown() {
    bench_fail "unknown argument '$1' (try --help)"
}

bench_positive() {
    [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || bench_fail "$1 needs a positive number"
}

bench_poolsync() {
    POOLSYNC=${POOLSYNC:-${CARGO_TARGET_DIR:-$REPO/target}/release/poolsync}
    [[ -x $POOLSYNC ]] || bench_fail "no poolsync binary at $POOLSYNC: build it with 'cargo build --release' or set POOLSYNC"
}

bench_need() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null || bench_fail "'$tool' is missing"
    done
}

# pair_deployment STORE_A STORE_B [DEPLOYMENT_LINE]
#   prints a deployment of the pair a.bench.com <-> b.bench.com (a hosts the
#   CMS), with the two `store` settings given and one optional extra line in
#   [deployment] (s3.sh names its credentials file there).
pair_deployment() {
    cat <<EOF
[deployment]
name = "bench"
cms_master = "a.bench.com"
${3:+$3
}[[site]]
identity = "S1"
site_id = 1
[[site]]
identity = "S2"
site_id = 2
[[pool]]
fqdn = "a.bench.com"
site = "S1"
backup_pool = "b.bench.com"
store = "$1"
[[pool]]
fqdn = "b.bench.com"
site = "S2"
backup_pool = "a.bench.com"
store = "$2"
EOF
}

# bench_rounds_args ARG...: the options of the scripts that time rounds on the
# 100,000-item dataset (see the list above).
bench_rounds_args() {
    RUNS=5 KIND=small ARGS=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --runs)
            bench_positive --runs "${2:-}"
            RUNS=$2
            shift
            ;;
        --smoke) RUNS=1 KIND=tiny ;;
        -h | --help) bench_help ;;
        -*) bench_unknown "$1" ;;
        *) ARGS+=("$1") ;;
        esac
        shift
    done
}
