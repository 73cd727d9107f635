#!/usr/bin/env bash
# Exercise 7: graceful shutdown. SIGTERM to the server while clients are
# connected, with the log of every resource closed; the grace period and
# SIGKILL; and what happens without a SIGTERM handler.
source "$(dirname "$0")/lib.sh"

say "SIGTERM while three clients are connected (--grace 3)"
start_server 07-graceful --grace 3
explain "two idle clients (connected, nothing sent) and one that sends a line every 0.2 s"
client_in_background --hold 3 < /dev/null
idle1=$CLIENT_PID
client_in_background --hold 3 < /dev/null
idle2=$CLIENT_PID
client_in_background --interval 200 < <(seq 1 15) > "$LAB_OUT/07-talker.out" 2> "$LAB_OUT/07-talker.err"
talker=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/07-graceful.log') -ge 3 ]"
show_processes
stop_server 07-graceful
show_log 07-graceful
talker_status=0
wait "$talker" || talker_status=$?
wait "$idle1" "$idle2" || true
explain "the talking client got back $(wc -l < "$LAB_OUT/07-talker.out") lines and exited with status $talker_status:"
sed 's/^/    /' "$LAB_OUT/07-talker.err"
look "the parent stops accepting and closes msock first, then sends SIGTERM to each child;"
look "each child stops reading, echoes what it had read, sends its FIN (end of the echo), waits"
look "for the client's FIN, closes asock, logs it and exits 0; the parent reaps them all and"
look "prints the summary. The talking client got the echo of everything its child had read,"
look "then the end of the echo: it stops sending (its 'Broken pipe') and says the server closed."
look "Closing at once instead, with the client's new lines unread, would make the kernel answer"
look "with RST, and an RST throws away any echo still on its way to the client."

say "The port is free again at once"
run ss -tanl "( sport = :$PORT )"
LAB_PORT=$PORT start_server 07-restarted
stop_server 07-restarted

say "A child that cannot finish in time: --delay 5000 (5 s per echo) and --grace 1"
start_server 07-slow --delay 5000 --grace 1
client_in_background < <(printf 'too slow\n') > /dev/null 2> "$LAB_OUT/07-slow-client.err"
slow=$CLIENT_PID
wait_for_line "$LAB_OUT/07-slow.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-slow.log" | head -n 1)
# The child has read the line once it sleeps in its delay (ps: WCHAN nanosleep).
wait_until "ps -o wchan:32= -p $child | grep -q sleep"
run ps -o pid,stat,wchan:32,args -p "$child"
stop_server 07-slow
wait "$slow" || true
grep -E "SIGTERM|grace|SIGKILL|shutdown" "$LAB_OUT/07-slow.log" | sed 's/^/    /'
look "after 1 s of grace the parent sends SIGKILL, which cannot be caught: killed=1."
look "This is what 'docker stop -t 1' does to a container: SIGTERM, a timeout, then SIGKILL."

say "Without a SIGTERM handler (--no-sigterm-handler)"
start_server 07-nohandler --no-sigterm-handler
client_in_background --hold 2 < /dev/null
holder=$CLIENT_PID
wait_for_line "$LAB_OUT/07-nohandler.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-nohandler.log" | head -n 1)
kill_server TERM
explain "the parent was killed by SIGTERM: no summary in its log"
run ps -o pid,ppid,stat,args -p "$child"
look "the parent died at once, without closing anything itself or telling its children; the"
look "child lives on, adopted by another process (PPID changed), and still serves its client."
wait "$holder" || true
show_log 07-nohandler
