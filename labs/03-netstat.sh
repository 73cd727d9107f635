#!/usr/bin/env bash
# Exercise 3: the server's connections as netstat and ss list them: LISTEN,
# ESTABLISHED, TIME_WAIT, and the clients' ephemeral ports.
source "$(dirname "$0")/lib.sh"

say "The port range the kernel picks clients' (ephemeral) ports from"
run cat /proc/sys/net/ipv4/ip_local_port_range

say "A server, alone: one socket in LISTEN, held by the parent"
start_server 03-server
run ss -tanp "( sport = :$PORT )"

say "Three clients that keep their connection open for 2 s (--hold 2)"
holders=()
for n in 1 2 3; do
    client_in_background --hold 2 < /dev/null
    holders+=("$CLIENT_PID")
done
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/03-server.log') -ge 3 ]"
wait_until "[ \$(ss -tan state established '( sport = :$PORT )' | tail -n +2 | wc -l) -ge 3 ]"
run ss -tanp "( sport = :$PORT or dport = :$PORT )"
if command -v netstat >/dev/null 2>&1; then
    run netstat -tn | grep -E "Proto|:$PORT\b"
else
    explain "(netstat is not installed; ss shows the same: apt-get install net-tools for netstat)"
fi
look "each connection appears twice: the client's end (an ephemeral port -> $PORT) and the"
look "server's end ($PORT -> that ephemeral port); every server end is ESTABLISHED and held by"
look "a different child (ss -p), while LISTEN stays with the parent: fork gave each client its own process."
wait "${holders[@]}"

say "After the clients are gone"
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/03-server.log') -ge 3 ]"
run ss -tan "( sport = :$PORT or dport = :$PORT )"
look "TIME-WAIT on the clients' ephemeral ports: the side that closes first (here the client,"
look "which half-closes when its input ends) keeps the connection in TIME_WAIT for 60 s,"
look "so that late packets of this connection cannot be taken for a new one."
stop_server 03-server
