#!/usr/bin/env bash
# Exercise 1 (and 3): the concurrent server with one client, then two
# clients at once against a slow server, to see both served at the same
# time; and the same against the iterative server of the previous lab.
source "$(dirname "$0")/lib.sh"

say "Exercise 1: one server, one client"
start_server 01-server
printf 'hello, server\nsecond line\n' > "$LAB_OUT/01-input.txt"
run cat "$LAB_OUT/01-input.txt"
client < "$LAB_OUT/01-input.txt"
wait_for_line "$LAB_OUT/01-server.log" "reaped child"
show_log 01-server
look "the parent accepts and forks; the child closes msock, echoes, closes asock and exits;"
look "the parent closes asock at once, and its reaper collects the child when it exits."
stop_server 01-server

say "Two clients against a slow server (--delay 300: 0.3 s before each echo)"
start_server 01-slow --delay 300
start=$(now_ms)
client --interval 10 < <(printf 'A1\nA2\nA3\n')
alone=$(($(now_ms) - start))
explain "one client alone took ${alone} ms; now two at the same time:"
start=$(now_ms)
client_in_background --interval 10 < <(printf 'B1\nB2\nB3\n') > "$LAB_OUT/01-client-b.out"
first=$CLIENT_PID
client_in_background --interval 10 < <(printf 'C1\nC2\nC3\n') > "$LAB_OUT/01-client-c.out"
second=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/01-slow.log') -ge 3 ]"
show_processes
wait "$first" "$second"
together=$(($(now_ms) - start))
run cat "$LAB_OUT/01-client-b.out" "$LAB_OUT/01-client-c.out"
explain "one client alone: ${alone} ms; two clients at once: ${together} ms"
look "two children (one per client) alive at the same time in ps, under the parent;"
look "two clients took about as long as one: the server served them in parallel."
stop_server 01-slow
show_log 01-slow

say "The same against the iterative server (--mode iterative --delay 300)"
start_server 01-iterative --mode iterative --delay 300
start=$(now_ms)
client_in_background --interval 10 < <(printf 'D1\nD2\nD3\n') > "$LAB_OUT/01-client-d.out"
first=$CLIENT_PID
client_in_background --interval 10 < <(printf 'E1\nE2\nE3\n') > "$LAB_OUT/01-client-e.out"
second=$CLIENT_PID
wait "$first" "$second"
sequential=$(($(now_ms) - start))
explain "one client alone: ${alone} ms; two clients at once, iterative server: ${sequential} ms"
stop_server 01-iterative
show_log 01-iterative
look "the iterative server accepts the second client only when the first is finished (see the"
look "order of 'accepted' and 'finished' in its log): the second client waits its turn, and two"
look "clients take longer than one. (Here the second's lines had all arrived meanwhile, so the"
look "server read them in one go, with a single pause.)"
