#!/usr/bin/env bash
# Exercise 6: SIGPIPE, made to happen every time, in the server's three
# modes: default (it kills the child), ignore (EPIPE) and count (a handler).
source "$(dirname "$0")/lib.sh"

explain "The recipe: the server waits 100 ms before each echo (--delay 100); the client sends"
explain "'one', 50 ms later 'two', and closes without reading (--no-read). The echo of 'one'"
explain "reaches a closed socket, which answers with RST; the child's next write (the echo of"
explain "'two') finds the connection broken: write fails with EPIPE and the kernel sends SIGPIPE."

for mode in default ignore count; do
    say "--sigpipe $mode"
    start_server "06-$mode" --sigpipe "$mode" --delay 100
    client --interval 50 --no-read < <(printf 'one\ntwo\n')
    wait_for_line "$LAB_OUT/06-$mode.log" "reaped child"
    stop_server "06-$mode"
    grep -E "SIGPIPE|EPIPE|reaped|shutdown" "$LAB_OUT/06-$mode.log" | sed 's/^/    /'
done

look "default: SIG_DFL, as in a C program; the child dies in its write, killed by signal 13"
look "         (SIGPIPE), without a word: only the parent's reaper reports it;"
look "ignore:  SIG_IGN (what Rust programs start with): the signal is discarded, write returns EPIPE;"
look "         the child logs it ('SIGPIPE ignored') and exits with status 3;"
look "count:   our handler runs ('SIGPIPE caught (count=1)'), then write returns EPIPE; the child"
look "         logs it and exits 3;"
look "in every mode the summary counts sigpipe=1."
