#!/bin/sh
# The socket tests again, under conditions other than this machine's own,
# to prove that they hold on any kernel settings and on a busy machine:
#   1. in a network namespace with large TCP buffers (up to 16 MiB),
#   2. in one with small TCP buffers (up to 64 KiB),
#   3. with both cores kept busy by two spinning processes.
# net.ipv4.tcp_wmem and tcp_rmem belong to each network namespace, so the
# machine's own settings are left alone. Needs root (ip netns); exits 77
# (skipped) without it. Every namespace and process it makes is removed
# when it ends, also on failure or Ctrl-C. Run by .ci/run after make test.
#
#   tests/conditions.sh            all three
#   tests/conditions.sh small      one of them: large, small or busy
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "conditions: SKIPPED: network namespaces need root"
    exit 77
fi

# The integration tests of the server crate, already built by make test.
# (The container test, which needs no other buffers, runs once, in make test.)
TESTS="cargo test --release --offline --no-fail-fast -p tcpechod --tests -- --skip compose_ --skip the_lab_container_runs"

namespaces=""
spinners=""
cleanup() {
    for pid in $spinners; do kill "$pid" 2>/dev/null || true; done
    for ns in $namespaces; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failed=""

# in_namespace NAME WMEM RMEM: the tests in a new namespace with these buffers.
in_namespace() {
    ns="tcpechod-$1-$$"
    ip netns add "$ns"
    namespaces="$namespaces $ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_wmem="$2" net.ipv4.tcp_rmem="$3"
    echo "== conditions: $1 TCP buffers (tcp_wmem $2, tcp_rmem $3), namespace $ns"
    ip netns exec "$ns" $TESTS || failed="$failed $1"
    ip netns del "$ns"
}

busy() {
    echo "== conditions: both cores kept busy by two spinning processes"
    for n in 1 2; do
        sh -c 'while :; do :; done' &
        spinners="$spinners $!"
    done
    $TESTS || failed="$failed busy"
    for pid in $spinners; do kill "$pid" 2>/dev/null || true; done
    spinners=""
}

which=${1:-all}
case $which in
    large | all) in_namespace large "4096 16384 16777216" "4096 131072 16777216" ;;
esac
case $which in
    small | all) in_namespace small "4096 16384 65536" "4096 16384 65536" ;;
esac
case $which in
    busy | all) busy ;;
    large | small) ;;
    *) echo "conditions: unknown condition '$which' (large, small or busy)" >&2; exit 2 ;;
esac

if [ -n "$failed" ]; then
    echo "conditions: tests failed under:$failed" >&2
    exit 1
fi
echo "conditions: every test passed under every condition"
