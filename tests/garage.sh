#!/usr/bin/env bash
# Starts and stops the Garage servers the S3 tests and benchmarks run against.
# CI and developers use this one script.
#
#   tests/garage.sh run CMD [ARGS...]  start everything, run CMD, stop everything
#                                      (even when CMD fails); exits with CMD's status
#   tests/garage.sh start | stop       the same, by hand
#   tests/garage.sh install            build Garage $GARAGE_VERSION if it is missing
#   tests/garage.sh node-stop N | node-start N
#                                      stop or restart node N (1-3) of the cluster
#
# What it starts, all on loopback:
#   - one node (replication factor 1) for the functional tests: S3 on $BASE_PORT;
#   - a cluster of three nodes (replication factor 3, three data directories) for
#     the resilience test: S3 on $BASE_PORT+10, +20, +30.
# Each has a bucket and a key; the endpoints and keys are written to
# $GARAGE_DIR/env, which the tests read (they are throwaway keys for throwaway
# servers). POOLSYNC_GARAGE_SINGLE=1 starts the single node only (the
# benchmark does); POOLSYNC_GARAGE_DIR and POOLSYNC_GARAGE_PORT move it all. `run` builds Garage first when it is missing (about 16 minutes on a
# 2-core machine, once).
set -euo pipefail

GARAGE_VERSION=2.5.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GARAGE_DIR=${POOLSYNC_GARAGE_DIR:-$ROOT/target/garage}
BASE_PORT=${POOLSYNC_GARAGE_PORT:-3900}
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

say() { echo "garage.sh: $*" >&2; }

garage_bin() {
    if [[ -n ${POOLSYNC_GARAGE_BIN:-} ]]; then
        echo "$POOLSYNC_GARAGE_BIN"
    elif command -v garage >/dev/null 2>&1; then
        command -v garage
    else
        echo "$CARGO_BIN/garage"
    fi
}

have_garage() {
    local bin
    bin=$(garage_bin)
    [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -qE "[v:]$GARAGE_VERSION( |$)"
}

install() {
    if have_garage; then
        say "Garage $GARAGE_VERSION is installed: $(garage_bin)"
        return
    fi
    say "building Garage $GARAGE_VERSION with cargo install (about 16 minutes on 2 cores, once)"
    cargo install garage --locked --version "$GARAGE_VERSION"
}

# config DIR S3_PORT REPLICATION
config() {
    local dir=$1 port=$2 rf=$3
    mkdir -p "$dir/meta" "$dir/data"
    cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = $rf
rpc_bind_addr = "127.0.0.1:$((port + 1))"
rpc_public_addr = "127.0.0.1:$((port + 1))"
rpc_secret = "$SECRET"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$((port + 3))"
admin_token = "poolsync-test-admin"
EOF
}

g() { "$(garage_bin)" -c "$1/garage.toml" "${@:2}"; }

start_node() {
    local dir=$1
    "$(garage_bin)" -c "$dir/garage.toml" server >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    # Not a job of this shell: a node the resilience test kills is not reported.
    disown $!
    for _ in $(seq 1 100); do
        if g "$dir" status >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            say "the Garage server in $dir exited; its log:"
            tail -20 "$dir/server.log" >&2
            return 1
        fi
        sleep 0.2
    done
    say "the Garage server in $dir did not answer within 20 s"
    return 1
}

node_id() { g "$1" node id -q 2>/dev/null | cut -d@ -f1; }

# retry CMD...: cluster operations can fail until the layout has spread.
retry() {
    for _ in $(seq 1 50); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.3
    done
    "$@"
}

# make_key DIR BUCKET NAME -> prints "KEY_ID SECRET"
make_key() {
    local dir=$1 bucket=$2 name=$3 out id secret
    retry g "$dir" bucket create "$bucket"
    out=$(g "$dir" key create "$name")
    id=$(awk '/Key ID/ {print $NF}' <<<"$out")
    secret=$(awk '/Secret key/ {print $NF}' <<<"$out")
    retry g "$dir" bucket allow --read --write --owner "$bucket" --key "$name"
    echo "$id $secret"
}

start() {
    if ! have_garage; then
        say "Garage $GARAGE_VERSION is not installed: run tests/garage.sh install"
        return 1
    fi
    stop quiet
    rm -rf "$GARAGE_DIR"
    mkdir -p "$GARAGE_DIR"
    SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

    # One node.
    local single=$GARAGE_DIR/single
    config "$single" "$BASE_PORT" 1
    start_node "$single"
    g "$single" layout assign -z dc1 -c 1G "$(node_id "$single")" >/dev/null
    g "$single" layout apply --version 1 >/dev/null
    read -r key secret < <(make_key "$single" poolsync-test poolsync-test)
    [[ -n ${secret:-} ]] || { say "could not create a key on the single node"; return 1; }
    retry g "$single" bucket create poolsync-bench
    retry g "$single" bucket allow --read --write --owner poolsync-bench --key poolsync-test

    if [[ -n ${POOLSYNC_GARAGE_SINGLE:-} ]]; then
        write_env "$key" "$secret" "" ""
        say "Garage $GARAGE_VERSION up: one node at http://127.0.0.1:$BASE_PORT; settings in $GARAGE_DIR/env"
        return
    fi

    # Three nodes.
    local n ids=()
    for n in 1 2 3; do
        config "$GARAGE_DIR/node$n" $((BASE_PORT + 10 * n)) 3
        start_node "$GARAGE_DIR/node$n"
        ids+=("$(node_id "$GARAGE_DIR/node$n")")
    done
    local first=$GARAGE_DIR/node1
    for n in 2 3; do
        retry g "$first" node connect "${ids[n - 1]}@127.0.0.1:$((BASE_PORT + 10 * n + 1))"
    done
    for n in 1 2 3; do
        retry g "$first" layout assign -z "dc$n" -c 1G "${ids[n - 1]}"
    done
    retry g "$first" layout apply --version 1
    read -r ckey csecret < <(make_key "$first" poolsync-cluster poolsync-cluster)
    [[ -n ${csecret:-} ]] || { say "could not create a key on the cluster"; return 1; }
    write_env "$key" "$secret" "$ckey" "$csecret"
    say "Garage $GARAGE_VERSION up: one node at http://127.0.0.1:$BASE_PORT, three at ports $((BASE_PORT + 10)), $((BASE_PORT + 20)), $((BASE_PORT + 30)); settings in $GARAGE_DIR/env"
}

# write_env KEY SECRET CLUSTER_KEY CLUSTER_SECRET
write_env() {
    local key=$1 secret=$2 ckey=$3 csecret=$4
    cat >"$GARAGE_DIR/env" <<EOF
POOLSYNC_S3_ENDPOINT=http://127.0.0.1:$BASE_PORT
POOLSYNC_S3_REGION=garage
POOLSYNC_S3_BUCKET=poolsync-test
POOLSYNC_S3_BENCH_BUCKET=poolsync-bench
POOLSYNC_S3_ACCESS_KEY_ID=$key
POOLSYNC_S3_SECRET_ACCESS_KEY=$secret
POOLSYNC_S3_ADMIN=http://127.0.0.1:$((BASE_PORT + 3))
POOLSYNC_S3_CLUSTER_ENDPOINT=http://127.0.0.1:$((BASE_PORT + 10))
POOLSYNC_S3_CLUSTER_BUCKET=poolsync-cluster
POOLSYNC_S3_CLUSTER_ACCESS_KEY_ID=$ckey
POOLSYNC_S3_CLUSTER_SECRET_ACCESS_KEY=$csecret
POOLSYNC_GARAGE_SCRIPT=$ROOT/tests/garage.sh
EOF
    chmod 600 "$GARAGE_DIR/env"
}

stop() {
    local pidfile stopped=0
    for pidfile in "$GARAGE_DIR"/*/pid; do
        [[ -f $pidfile ]] || continue
        local pid
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            stopped=$((stopped + 1))
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    [[ ${1:-} == quiet ]] || say "stopped $stopped Garage server(s)"
}

node_stop() {
    local dir=$GARAGE_DIR/node$1
    [[ -f $dir/pid ]] || { say "node $1 is not running"; return 1; }
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
}

node_start() {
    start_node "$GARAGE_DIR/node$1"
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop ;;
node-stop) node_stop "${2:?which node (1-3)?}" ;;
node-start) node_start "${2:?which node (1-3)?}" ;;
run)
    shift
    [[ $# -gt 0 ]] || { say "usage: tests/garage.sh run CMD [ARGS...]"; exit 2; }
    install
    trap 'stop' EXIT
    trap 'exit 130' INT TERM
    start
    export POOLSYNC_GARAGE_ENV=$GARAGE_DIR/env
    set +e
    "$@"
    status=$?
    set -e
    exit $status
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
