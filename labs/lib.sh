# Shared by the lab scripts (sourced, not run): how they explain, show and
# run commands, start servers, and clean up after themselves.
#
# Every script prints what it does ("==" lines), each command before it runs
# it ("$" lines), and what to look at (">> LOOK" lines). Servers run in a
# session of their own (setsid), so that a script can kill a server and all
# its children at once; whatever a script starts is stopped when it ends,
# also when it fails or is interrupted with Ctrl-C.
#
# Settings (environment): TCPECHOD, TCPECHO (the binaries; by default the
# ones `make` puts at the top of the repository, rebuilt first), LAB_OUT (where logs and
# captures go, default labs/out), LAB_PORT (the server port, default 0: any
# free port; use your 8xxx port in the lab room).

set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LAB_DIR/.." && pwd)
if [ -z "${TCPECHOD:-}" ] || [ -z "${TCPECHO:-}" ]; then
    # The binaries of this checkout, rebuilt if the code changed.
    TCPECHOD=$ROOT/TCPechod
    TCPECHO=$ROOT/TCPecho
    if ! build_output=$(make -s -C "$ROOT" build 2>&1); then
        printf '%s\nmake failed: the lab needs the programs built\n' "$build_output" >&2
        exit 1
    fi
fi
LAB_OUT=${LAB_OUT:-$LAB_DIR/out}
LAB_PORT=${LAB_PORT:-0}
mkdir -p "$LAB_OUT"

say() { printf '\n== %s\n' "$*"; }
explain() { printf '   %s\n' "$@"; }
look() { printf '>> LOOK: %s\n' "$*"; }
# Shows a command, then runs it.
run() {
    printf '$ %s\n' "$*"
    "$@"
}
# Exit status 77 means "skipped" (the convention of automake and others).
skip() {
    printf '\nSKIPPED: %s\n' "$*"
    exit 77
}

# Commands to run when the script ends, most recent first.
CLEANUP=()
at_exit() { CLEANUP=("$1" "${CLEANUP[@]}"); }
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for command in "${CLEANUP[@]}"; do
        eval "$command" >/dev/null 2>&1 || true
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits (at most $3 seconds, default 10) until file $1 has a line matching $2.
wait_for_line() {
    local file=$1 pattern=$2 tries=$((${3:-10} * 20))
    while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "timed out waiting for '$pattern' in $file" >&2
            cat "$file" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

# Waits (at most $2 seconds) until command $1 succeeds.
wait_until() {
    local condition=$1 tries=$((${2:-10} * 20))
    until eval "$condition"; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "timed out waiting for: $condition" >&2
            return 1
        fi
        sleep 0.05
    done
}

# start_server NAME [OPTIONS...]: starts TCPechod on 127.0.0.1 (or on
# $BIND), logging to $LAB_OUT/NAME.log, and waits until it listens. Sets
# SERVER_PID and PORT. $LAB_PORT is used as the port if set, else any free
# one. Set NETNS to run it inside a network namespace.
start_server() {
    local name=$1
    shift
    local log="$LAB_OUT/$name.log"
    local prefix=()
    if [ -n "${NETNS:-}" ]; then prefix=(ip netns exec "$NETNS"); fi
    printf '$ %s\n' "${prefix[*]:+${prefix[*]} }TCPechod --bind ${BIND:-127.0.0.1} ${*:+$* }$LAB_PORT 2> $log &"
    setsid "${prefix[@]}" "$TCPECHOD" --bind "${BIND:-127.0.0.1}" "$@" "$LAB_PORT" 2>"$log" &
    SERVER_PID=$!
    at_exit "kill -KILL -- -$SERVER_PID"
    wait_for_line "$log" "listening on"
    PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n 1)
    explain "server $SERVER_PID listening on port $PORT"
}

# stop_server NAME [SIGNAL]: sends SIGTERM (or SIGNAL) to the server and
# waits until it and its children have exited.
stop_server() {
    local name=$1 sig=${2:-TERM}
    run kill "-$sig" "$SERVER_PID"
    wait_until "! kill -0 -- -$SERVER_PID 2>/dev/null" 15
    wait "$SERVER_PID" 2>/dev/null || true
}

# show_log NAME: prints the server's log so far, indented.
show_log() {
    sed 's/^/    /' "$LAB_OUT/$1.log"
}

# The server's processes: the parent and its children (zombies included).
show_processes() {
    run ps -o pid,ppid,stat,args --sid "$SERVER_PID"
}

# The sockets of the server's port.
show_sockets() {
    run ss -tan "( sport = :$PORT or dport = :$PORT )"
}

# client ARGS...: runs TCPecho against the server, showing the command (on
# stderr, so that it shows even when the echo goes to a file).
client() {
    printf '$ TCPecho %s127.0.0.1 %s\n' "${*:+$* }" "$PORT" >&2
    "$TCPECHO" "$@" 127.0.0.1 "$PORT"
}

# client_in_background ARGS... < INPUT: like client, in the background;
# sets CLIENT_PID, and the client is killed when the script ends.
client_in_background() {
    printf '$ TCPecho %s127.0.0.1 %s &\n' "${*:+$* }" "$PORT" >&2
    # <&0: keep our standard input (a background command would get /dev/null).
    "$TCPECHO" "$@" 127.0.0.1 "$PORT" <&0 &
    CLIENT_PID=$!
    at_exit "kill -KILL $CLIENT_PID"
}

# kill_and_wait SIGNAL PID: shows and sends the signal to a process this
# script started, and waits for it to die (without bash's "Killed" notice).
kill_and_wait() {
    printf '$ kill -%s %s\n' "$1" "$2"
    { kill "-$1" "$2" && wait "$2"; } 2>/dev/null || true
}

# kill_server SIGNAL: the same for the server only (not its children).
kill_server() {
    kill_and_wait "$1" "$SERVER_PID"
}

# Milliseconds since some fixed point, to time things.
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

need_root() {
    [ "$(id -u)" = 0 ] || skip "this experiment needs root ($1); run it with sudo"
}

need_command() {
    command -v "$1" >/dev/null 2>&1 || skip "this experiment needs '$1' (on Debian: apt-get install $2)"
}
