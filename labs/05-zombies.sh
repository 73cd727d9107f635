#!/usr/bin/env bash
# Exercise 5: the same load against a server with the SIGCHLD reaper and
# against one without it (--no-reaper), with ps before and after.
source "$(dirname "$0")/lib.sh"

# Three short clients, one after another.
three_clients() {
    for n in 1 2 3; do
        printf 'client %s\n' "$n" | client
    done
}

for variant in with without; do
    if [ "$variant" = with ]; then
        say "A server WITH the reaper"
        start_server 05-$variant
    else
        say "A server WITHOUT the reaper (--no-reaper)"
        start_server 05-$variant --no-reaper
    fi
    explain "before the clients:"
    show_processes
    three_clients
    if [ "$variant" = with ]; then
        wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/05-$variant.log') -ge 3 ]"
    else
        wait_until "[ \$(ps -o stat= --ppid $SERVER_PID | grep -c Z) -ge 3 ]"
    fi
    explain "after the clients closed their connections:"
    show_processes
    run ps x | grep -E "PID|$SERVER_PID|defunct" | grep -v grep
    run kill -USR1 "$SERVER_PID"
    wait_for_line "$LAB_OUT/05-$variant.log" "status:"
    grep "status:" "$LAB_OUT/05-$variant.log" | sed 's/^/    /'
    stop_server 05-$variant
    show_log 05-$variant
done

look "with the reaper, ps shows only the parent once the clients are done: each child was"
look "reaped (waitpid in the SIGCHLD handler) as it exited; 'reaped child' lines in the log."
look "without it, each finished child stays as a zombie (STAT Z, <defunct>): it holds its PID"
look "and exit status until the parent waits for it. Only the shutdown reaps them here;"
look "the SIGUSR1 status line counts them (zombies=3)."
