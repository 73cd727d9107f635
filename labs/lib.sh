# Shared by the lab scripts (sourced, not run): how they explain, show and
# run commands, start servers, and clean up after themselves.
#
# Every script prints what it does ("==" lines), each command before it runs
# it ("$" lines), and what to look at (">> FÍJATE" or ">> LOOK" lines), in
# Spanish when LC_ALL, LC_MESSAGES or LANG says so, in English otherwise:
# say, explain and look take the English text, then the Spanish one. Servers
# run in a session of their own (setsid), so that a script can kill a server
# and all its children at once; whatever a script starts is stopped when it
# ends, also when it fails or is interrupted with Ctrl-C.
#
# Runs never get in each other's way, also two of the same script at once
# (two students on one machine, or one with two terminals): each run keeps
# its logs and captures in a folder of its own, LAB_OUT/SCRIPT/DATE-TIME-PID
# (LAB_OUT/SCRIPT/latest names the last one started), and looks only at
# the processes it started. A server that cannot start (its port taken, say)
# stops the script at once with the server's own error, exit status 1.
#
# Run with sudo (sudo labs/02-tcpdump.sh), a script builds as the student
# who ran sudo, never as root, and gives that student every file and folder
# it makes in the tree: root leaves nothing behind that the student cannot
# remove or rebuild.
#
# Settings (environment): TCPECHOD, TCPECHO (the binaries; by default the
# ones `make` puts at the top of the repository, rebuilt first), LAB_OUT (where
# the runs' folders go, default labs/out), LAB_PORT (the server port, default
# 0: any free port; use your 8xxx port in the lab room).

set -euo pipefail

LAB_LANG=en
case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LAB_LANG=es ;; esac
# t ENGLISH SPANISH: the text in the lab's language.
t() { if [ "$LAB_LANG" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }

# Programs such as ip and tcpdump live in /usr/sbin or /sbin on some
# systems, outside a user's PATH.
PATH=$PATH:/usr/sbin:/sbin
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LAB_DIR/.." && pwd)

# Run through sudo in a student's tree: AS_STUDENT runs a command as that
# student (with their HOME and their cargo), so that what it makes is
# theirs; STUDENT_OWNS is their uid:gid. Empty otherwise.
AS_STUDENT=()
STUDENT_OWNS=
if [ "$(id -u)" = 0 ] && [[ ${SUDO_UID:-} =~ ^[1-9][0-9]*$ ]] && [[ ${SUDO_GID:-} =~ ^[0-9]+$ ]] \
    && [ "$(stat -c %u "$ROOT")" = "$SUDO_UID" ]; then
    STUDENT_OWNS=$SUDO_UID:$SUDO_GID
    student_home=$(getent passwd "$SUDO_UID" | cut -d: -f6 || true)
    student_home=${student_home:-/nonexistent}
    AS_STUDENT=(setpriv "--reuid=$SUDO_UID" "--regid=$SUDO_GID" --init-groups
        env "HOME=$student_home" "USER=${SUDO_USER:-}" "LOGNAME=${SUDO_USER:-}"
        "PATH=$student_home/.cargo/bin:$PATH")
fi
# One build at a time in this checkout: two runs building at once would
# copy the same binaries over each other (make build's copy is not made for
# that). "${BUILD_LOCK[@]}" make ... waits for the other run's build, after
# which there is little left to do.
BUILD_LOCK=()
if command -v flock >/dev/null 2>&1; then BUILD_LOCK=(flock "$ROOT"); fi
if [ -z "${TCPECHOD:-}" ] || [ -z "${TCPECHO:-}" ]; then
    # The binaries of this checkout, rebuilt if the code changed.
    TCPECHOD=$ROOT/TCPechod
    TCPECHO=$ROOT/TCPecho
    # With sudo, binaries that the student built after the last change of
    # the code are used as they are: under sudo their cargo may be out of reach.
    if [ -n "$STUDENT_OWNS" ] && [ -x "$TCPECHOD" ] && [ -x "$TCPECHO" ] && [ -d "$ROOT/src" ] \
        && [ -z "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$TCPECHOD" -print -quit 2>/dev/null)" ]; then
        :
    elif ! build_output=$("${AS_STUDENT[@]}" "${BUILD_LOCK[@]}" make -s -C "$ROOT" build 2>&1); then
        printf '%s\nmake: %s\n' "$build_output" "$(t "failed: the lab needs the programs built" "falló: la práctica necesita los programas compilados")" >&2
        if [ -n "$STUDENT_OWNS" ]; then
            printf '%s\n' "$(t "With sudo the build runs as ${SUDO_USER:-you}, never as root: build it as yourself first (make), then run this script again with sudo." \
                "Con sudo se compila como ${SUDO_USER:-tú}, nunca como root: compila primero como tú mismo (make) y luego vuelve a ejecutar este script con sudo.")" >&2
        fi
        exit 1
    fi
fi
# Where commands are shown: the script's own stderr, even while a
# command's stderr goes to a file.
exec {SHOW}>&2
LAB_PORT=${LAB_PORT:-0}
LAB_PORT_ASKED=$LAB_PORT
# This run's folder, LAB_OUT/SCRIPT/DATE-TIME-PID: what the script writes
# goes there, and nowhere else. The names sort in the order the runs started.
LAB_SCRIPT=$(basename "$0" .sh)
if [ -n "${LAB_RUN_DIR:-}" ]; then
    # The same run, carried on inside a private network (02-tcpdump.sh).
    LAB_OUT=$LAB_RUN_DIR
else
    LAB_RUN=$(date +%Y%m%d-%H%M%S)-$$
    "${AS_STUDENT[@]}" mkdir -p "${LAB_OUT:-$LAB_DIR/out}/$LAB_SCRIPT"
    LAB_OUT=$(cd "${LAB_OUT:-$LAB_DIR/out}/$LAB_SCRIPT" && pwd)/$LAB_RUN
    "${AS_STUDENT[@]}" mkdir "$LAB_OUT"
    # "latest" points to the run started last: made under a name of our own,
    # then renamed over the old one, so that it is never missing or half made.
    "${AS_STUDENT[@]}" ln -s "$LAB_RUN" "$LAB_OUT.latest" \
        && "${AS_STUDENT[@]}" mv -T -f "$LAB_OUT.latest" "$(dirname "$LAB_OUT")/latest" || true
fi
LAB_RUN_DIR=$LAB_OUT
# Shown as the student would type it: from here, when it is below here.
LAB_OUT=${LAB_OUT#"$PWD"/}

# plural N ONE MANY: "1 line", "2 lines".
plural() { if [ "$1" = 1 ]; then printf '%s %s' "$1" "$2"; else printf '%s %s' "$1" "$3"; fi; }
# wrap FIRST REST TEXT: TEXT in lines of at most 88 columns, the first one
# after FIRST, the others after REST.
wrap() {
    printf '%s\n' "$3" | fold -s -w $((88 - ${#2})) | {
        IFS= read -r line
        printf '%s%s\n' "$1" "${line% }"
        while IFS= read -r line; do printf '%s%s\n' "$2" "${line% }"; done
    }
}
say() { wrap '== ' '   ' "$(t "$1" "$2")" | sed '1s/^/\n/'; }
explain() { wrap '   ' '   ' "$(t "$1" "$2")"; }
look() { wrap ">> $(t LOOK: FÍJATE:) " '   ' "$(t "$1" "$2")"; }
# Shows a command, then runs it.
run() {
    printf '$ %s\n' "$*"
    "$@"
}
# Shows a command line (quotes, pipes and all, as you would type it), then
# runs it with the shell.
run_line() {
    printf '$ %s\n' "$1"
    eval "$1"
}
# Exit status 77 means "skipped" (the convention of automake and others).
skip() {
    printf '\n%s %s\n' "$(t SKIPPED: OMITIDO:)" "$(t "$1" "$2")"
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
    # What root wrote in the run's folder (logs, captures) goes to the student.
    if [ -n "$STUDENT_OWNS" ]; then chown -R "$STUDENT_OWNS" "$LAB_RUN_DIR" 2>/dev/null || true; fi
    if [ "$status" != 77 ]; then
        printf '\n%s %s\n' "$(t "Logs of this run:" "Registros de esta ejecución:")" "$LAB_OUT/"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Whether process $1 is alive: it exists, and is not a zombie.
alive() {
    local stat
    { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
    [[ ${stat##*") "} != Z* ]]
}

# Waits (at most $3 seconds, default 10) until file $1 has a line matching
# $2. With $4, a PID: returns 2 at once if that process dies first.
wait_for_line() {
    local file=$1 pattern=$2 tries=$((${3:-10} * 20)) pid=${4:-}
    while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
        if [ -n "$pid" ] && ! alive "$pid"; then
            # It may have written the line just before it died.
            grep -q -- "$pattern" "$file" 2>/dev/null && return 0
            return 2
        fi
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "$(t "timed out waiting for" "se acabó el tiempo esperando") '$pattern' ($file)" >&2
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
            echo "$(t "timed out waiting for:" "se acabó el tiempo esperando:") $condition" >&2
            return 1
        fi
        sleep 0.05
    done
}

# A command that a script starts in the background inherits SIGINT ignored
# (bash does that without job control); a server started in a terminal
# does not. env --default-signal (coreutils 8.31 and later) undoes it, so
# that the servers of the scripts meet SIGINT as yours do.
DEFAULT_SIGINT=()
if env --default-signal=INT true 2>/dev/null; then DEFAULT_SIGINT=(env --default-signal=INT); fi

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
    setsid "${prefix[@]}" "${DEFAULT_SIGINT[@]}" "$TCPECHOD" --bind "${BIND:-127.0.0.1}" "$@" "$LAB_PORT" 2>"$log" &
    SERVER_PID=$!
    at_exit "kill -KILL -- -$SERVER_PID"
    server_listening "$log"
    explain "server $SERVER_PID listening on port $PORT" "servidor $SERVER_PID escuchando en el puerto $PORT"
}

# server_listening LOG: waits until the server SERVER_PID, logging to LOG,
# listens, and sets PORT. If it dies instead, shows its error and ends the
# script (exit status 1).
server_listening() {
    local log=$1 waited=0
    wait_for_line "$log" "listening on" 10 "$SERVER_PID" || waited=$?
    if [ "$waited" = 2 ]; then
        {
            echo "$(t "the server did not start; its log" "el servidor no ha arrancado; su registro") ($log):"
            sed 's/^/    /' "$log"
            if [ "$LAB_PORT_ASKED" != 0 ] && [ "$LAB_PORT" = "$LAB_PORT_ASKED" ] && grep -q "in use" "$log"; then
                wrap '' '' "$(t "LAB_PORT=$LAB_PORT is taken: run the script with another LAB_PORT, or without one, to use any free port." \
                    "LAB_PORT=$LAB_PORT está ocupado: ejecuta el script con otro LAB_PORT, o sin él, para usar cualquier puerto libre.")"
            fi
        } >&2
        exit 1
    fi
    [ "$waited" = 0 ] || exit 1
    PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n 1)
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

# The server's processes, the parent and its children (zombies included),
# as `ps x -o pid,ppid,stat,args` lists them: `ps x` takes your own
# processes only (never another student's zombies, as `ps -C TCPechod`
# would), and awk keeps the header, the server (its PID) and its children
# (their PPID): not the rest of your session, nor the server of another run.
# $1: one more ps column (wchan:32).
show_processes() {
    run_line "ps x -o pid,ppid,stat,${1:+$1,}args | awk 'NR == 1 || \$1 == $SERVER_PID || \$2 == $SERVER_PID'"
}

# show_pids COLUMNS PID...: `ps x -o COLUMNS` (`ps x` if COLUMNS is
# empty), only the header and the processes PID...
show_pids() {
    local columns=$1 keep='NR == 1' pid
    shift
    for pid in "$@"; do keep+=" || \$1 == $pid"; done
    run_line "ps x${columns:+ -o $columns} | awk '$keep'"
}

# The sockets of the server's port, with their timers (ss -o).
show_sockets() {
    run_line "ss -tano \"( sport = :$PORT or dport = :$PORT )\""
}

# client ARGS...: runs TCPecho against the server, showing the command (on
# the script's stderr, so that it shows even when the echo goes to a file).
client() {
    printf '$ TCPecho %s127.0.0.1 %s\n' "${*:+$* }" "$PORT" >&"$SHOW"
    "$TCPECHO" "$@" 127.0.0.1 "$PORT"
}

# client_in_background ARGS... < INPUT: like client, in the background;
# sets CLIENT_PID, and the client is killed when the script ends.
client_in_background() {
    printf '$ TCPecho %s127.0.0.1 %s &\n' "${*:+$* }" "$PORT" >&"$SHOW"
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
    [ "$(id -u)" = 0 ] || skip "this experiment needs root ($1): run it as root, or with sudo" \
        "este experimento necesita root ($2): ejecútalo como root, o con sudo"
}

need_command() {
    command -v "$1" >/dev/null 2>&1 || skip "this experiment needs '$1' (on Debian: apt-get install $2)" \
        "este experimento necesita '$1' (en Debian: apt-get install $2)"
}
