#!/usr/bin/env bash
# Exercise 1 (and 3): the concurrent server with one client, then two
# clients at once against a slow server, to see both served at the same
# time; and the same against the iterative server of the previous lab.
source "$(dirname "$0")/lib.sh"

say "Exercise 1: one server, one client" "Ejercicio 1: un servidor, un cliente"
start_server 01-server
printf 'hello, server\nsecond line\n' > "$LAB_OUT/01-input.txt"
run cat "$LAB_OUT/01-input.txt"
client < "$LAB_OUT/01-input.txt"
wait_for_line "$LAB_OUT/01-server.log" "reaped child"
show_log 01-server
look "the parent accepts and forks; the child closes msock, echoes, closes asock and exits; the parent closes asock at once, and its reaper collects the child when it exits." \
    "el padre acepta y hace fork; el hijo cierra msock, hace el eco, cierra asock y termina; el padre cierra asock enseguida, y su reaper recoge al hijo cuando este termina."
look "'accepted' (the parent) and 'closed msock' (the child) come from two processes that run at the same time after fork: their order in the log is the order in which each got to its write, and it can change from one run to the next." \
    "'accepted' (el padre) y 'closed msock' (el hijo) vienen de dos procesos que se ejecutan a la vez después de fork: su orden en el registro es el orden en que cada uno llegó a escribir, y puede cambiar de una ejecución a otra."
stop_server 01-server

say "Two clients against a slow server (--delay 300: 0.3 s before each echo)" \
    "Dos clientes contra un servidor lento (--delay 300: 0,3 s antes de cada eco)"
start_server 01-slow --delay 300
start=$(now_ms)
client --interval 10 < <(printf 'A1\nA2\nA3\n')
alone=$(($(now_ms) - start))
explain "one client alone took ${alone} ms; now two at the same time:" \
    "un cliente solo ha tardado ${alone} ms; ahora, dos a la vez:"
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
explain "one client alone: ${alone} ms; two clients at once: ${together} ms" \
    "un cliente solo: ${alone} ms; dos clientes a la vez: ${together} ms"
look "in ps, two children (one per client) alive at the same time: their PPID is the parent's PID." \
    "en ps, dos hijos (uno por cliente) vivos a la vez: su PPID es el PID del padre."
look "two clients took about as long as one: the server served them at the same time." \
    "dos clientes han tardado más o menos lo mismo que uno: el servidor los ha atendido a la vez."
stop_server 01-slow
show_log 01-slow

say "The same against the iterative server (--mode iterative --delay 300)" \
    "Lo mismo contra el servidor secuencial (--mode iterative --delay 300)"
start_server 01-iterative --mode iterative --delay 300
start=$(now_ms)
client_in_background --interval 10 < <(printf 'D1\nD2\nD3\n') > "$LAB_OUT/01-client-d.out"
first=$CLIENT_PID
client_in_background --interval 10 < <(printf 'E1\nE2\nE3\n') > "$LAB_OUT/01-client-e.out"
second=$CLIENT_PID
wait "$first" "$second"
sequential=$(($(now_ms) - start))
explain "one client alone: ${alone} ms; two clients at once, iterative server: ${sequential} ms" \
    "un cliente solo: ${alone} ms; dos clientes a la vez, servidor secuencial: ${sequential} ms"
stop_server 01-iterative
show_log 01-iterative
look "the iterative server accepts the second client only when the first has finished (see the order of 'accepted' and 'finished' in its log): the second client waits its turn, and two clients take longer than one. (The second one's lines had all arrived meanwhile, so the server read them in one go, with a single pause.)" \
    "el servidor secuencial no acepta al segundo cliente hasta que termina el primero (mira el orden de 'accepted' y 'finished' en su registro): el segundo espera su turno, y dos clientes tardan más que uno. (Entretanto habían llegado todas las líneas del segundo, así que el servidor las leyó de una vez, con una sola pausa.)"
