#!/usr/bin/env bash
# Exercises 1, 3 and 7, the other way round: three toggles remove one line
# each from the server (--leak-asock, --leak-msock, --no-reuseaddr), so that
# you see what that line is for.
source "$(dirname "$0")/lib.sh"

fds() { ls "/proc/$1/fd" | wc -l; }

say "--leak-asock: the parent does not close the sockets it accepts"
start_server 08-leak-asock --leak-asock
explain "the parent has $(fds "$SERVER_PID") descriptors open; now three clients:"
for n in 1 2 3; do printf 'client %s\n' "$n" | client; done
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/08-leak-asock.log') -ge 3 ]"
explain "the parent has $(fds "$SERVER_PID") descriptors open"
run ss -tanp "( sport = :$PORT or dport = :$PORT )"
look "three more descriptors in the parent, one per client, and never fewer: with enough"
look "clients the server runs out of descriptors (accept fails with EMFILE)."
look "The server's ends stay in CLOSE-WAIT, held by the parent (ss -p): the clients' FIN came,"
look "but the kernel sends our FIN only when the LAST descriptor of a socket is closed, and the"
look "parent still holds one. The clients' ends wait in FIN-WAIT-2 for a FIN that never comes."
stop_server 08-leak-asock

say "--leak-msock: the children keep the listening socket"
start_server 08-leak-msock --leak-msock
client_in_background --hold 5 < /dev/null
wait_for_line "$LAB_OUT/08-leak-msock.log" "NOT closing msock"
explain "kill -9: the parent dies at once, its children live on"
kill_server KILL
show_log 08-leak-msock
run ss -tlnp "( sport = :$PORT )"
status=0
run "$TCPECHOD" --bind 127.0.0.1 "$PORT" || status=$?
explain "exit status $status"
look "the port is still in LISTEN, held by the orphaned child (ss -p): a new server cannot bind"
look "it, and new clients would wait in a queue that nobody accepts from. A correct child closes"
look "msock right after fork; then a killed parent frees its port at once."
kill -KILL -- "-$SERVER_PID" 2>/dev/null || true

say "--no-reuseaddr: restarting while old connections are in TIME_WAIT"
start_server 08-first
client_in_background --hold 60 < /dev/null
first=$CLIENT_PID
client_in_background --hold 60 < /dev/null
second=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/08-first.log') -ge 2 ]"
explain "the server shuts down first (its FIN goes first), so its side of each connection ends in TIME_WAIT"
stop_server 08-first
kill_and_wait TERM "$first"
kill_and_wait TERM "$second"
wait_until "ss -tan state time-wait '( sport = :$PORT )' | grep -q ':$PORT'" 20 || {
    run ss -tan "( sport = :$PORT or dport = :$PORT )"
    exit 1
}
run ss -tan "( sport = :$PORT )"
status=0
run "$TCPECHOD" --no-reuseaddr --bind 127.0.0.1 "$PORT" || status=$?
explain "exit status $status"
LAB_PORT=$PORT start_server 08-restarted
look "without SO_REUSEADDR, bind refuses a port that still has connections in TIME_WAIT"
look "(for 60 s); with it (the default, set in passive_tcp) the restart works at once."
stop_server 08-restarted
