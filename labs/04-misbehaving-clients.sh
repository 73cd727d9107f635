#!/usr/bin/env bash
# Exercise 4: clients that misbehave (one connects and says nothing, one
# sends without ever reading the echo, then dies in the middle) do not stop
# the server from serving everybody else: each has a child of its own.
source "$(dirname "$0")/lib.sh"

start_server 04-server

say "Client A connects and sends nothing"
client_in_background --hold 10 < /dev/null
idle=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/04-server.log') -ge 1 ]"

say "Client B sends 64 MiB and never reads the echo (--no-read)"
head -c 64M /dev/zero > "$LAB_OUT/04-big.input"
at_exit "rm -f '$LAB_OUT/04-big.input'"
client_in_background --no-read < "$LAB_OUT/04-big.input"
greedy=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/04-server.log') -ge 2 ]"
b_child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/04-server.log" | sed -n 2p)
explain "nobody drains B's connection: its child fills it and blocks in write"
b_port=$(sed -n 's/.*accepted 127.0.0.1:\([0-9]*\) on.*/\1/p' "$LAB_OUT/04-server.log" | sed -n 2p)
# Blocked: data waits at both ends, the child's unsent echo (Send-Q) and the
# part of B's data the child no longer reads (Recv-Q).
stuck() {
    ss -tn "( sport = :$PORT and dport = :$b_port )" | awk 'NR == 2 && $2 > 0 && $3 > 0 { found = 1 } END { exit !found }'
}
wait_until stuck 20

say "Client C, meanwhile"
start=$(now_ms)
client < <(printf 'is anybody there?\n')
explain "C was served in $(($(now_ms) - start)) ms"
run ps -o pid,ppid,stat,args --sid "$SERVER_PID"
run ss -tn "( sport = :$PORT or dport = :$PORT )"
look "three processes: the parent and the children of A and B, both asleep (S);"
look "A's connection is empty both ways: its child sleeps in read, waiting for data;"
look "B's connection is clogged both ways: the echo waits in the child's Send-Q for B, which never"
look "reads; B's data waits in Send-Q at B's end and Recv-Q at the child's end, because the child,"
look "stuck in write, no longer reads either."
look "C was served at once anyway. In an iterative server A alone would have blocked everybody."

say "B is killed in the middle of its transfer"
kill_and_wait KILL "$greedy"
wait_until "grep -q 'reaped child $b_child' '$LAB_OUT/04-server.log'"
grep -E "child $b_child|reaped child $b_child" "$LAB_OUT/04-server.log" | sed 's/^/    /'
look "the kernel closed B's socket with data unread and answered with RST: the blocked write of"
look "B's child failed (connection reset), the child exited and was reaped; A and the server go on."
kill_and_wait TERM "$idle"
stop_server 04-server

say "The previous lab's problem: the same silent client against the iterative server"
start_server 04-iterative --mode iterative
client_in_background --hold 10 < /dev/null
idle=$CLIENT_PID
wait_for_line "$LAB_OUT/04-iterative.log" "accepted"
explain "client C, given 2 s to get its echo:"
status=0
printf '$ timeout 2 TCPecho 127.0.0.1 %s\n' "$PORT"
printf 'is anybody there?\n' | timeout 2 "$TCPECHO" 127.0.0.1 "$PORT" || status=$?
explain "exit status $status (124: timeout killed it)"
run ss -tln "( sport = :$PORT )"
look "C got nothing: the iterative server is busy with the silent client A and accepts nobody"
look "else; C's connection waits in the queue of msock (Recv-Q of the LISTEN line)."
kill_and_wait TERM "$idle"
stop_server 04-iterative
