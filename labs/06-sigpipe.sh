#!/usr/bin/env bash
# Exercise 6, with the lab's server: SIGPIPE, made to happen every time, in
# the server's three modes: default (it kills the child), ignore (EPIPE)
# and count (a handler counts it).
source "$(dirname "$0")/lib.sh"

explain "The recipe: the server waits 100 ms before each echo (--delay 100); the client sends 'one', 50 ms later 'two', and closes without reading (--no-read). The echo of 'one' is written without error, but it reaches a socket that the client has closed, whose kernel answers with RST. The child's next write, the echo of 'two', finds the connection broken: write fails with EPIPE, and the kernel sends the child SIGPIPE." \
    "La receta: el servidor espera 100 ms antes de cada eco (--delay 100); el cliente envía 'one', 50 ms después 'two', y cierra sin leer (--no-read). El eco de 'one' se escribe sin error, pero llega a un socket que el cliente ha cerrado, y su núcleo responde con RST. La siguiente escritura del hijo, el eco de 'two', se encuentra la conexión rota: write falla con EPIPE y el núcleo envía SIGPIPE al hijo."

for mode in default ignore count; do
    say "--sigpipe $mode" "--sigpipe $mode"
    start_server "06-$mode" --sigpipe "$mode" --delay 100
    client --interval 50 --no-read < <(printf 'one\ntwo\n')
    wait_for_line "$LAB_OUT/06-$mode.log" "reaped child"
    stop_server "06-$mode"
    grep -E "SIGPIPE|EPIPE|reaped|shutdown" "$LAB_OUT/06-$mode.log" | sed 's/^/    /'
done

look "default: SIGPIPE's default action, as in a C program: the child dies in its write, killed by signal 13 (SIGPIPE), without a word; only the parent's reaper tells." \
    "default: la acción por omisión de SIGPIPE, como en un programa en C: el hijo muere en su write, matado por la señal 13 (SIGPIPE), sin decir nada; solo lo cuenta el reaper del padre."
look "ignore: SIG_IGN (what Rust programs start with): the signal is discarded and write returns EPIPE; the child logs it ('SIGPIPE ignored') and exits with status 3." \
    "ignore: SIG_IGN (así empiezan los programas en Rust): la señal se descarta y write devuelve EPIPE; el hijo lo anota ('SIGPIPE ignored') y termina con estado 3."
look "count: the server's handler runs ('SIGPIPE caught (count=1)'), and then write returns EPIPE; the child logs it and exits with status 3. In every mode the summary counts sigpipe=1." \
    "count: se ejecuta el manejador del servidor ('SIGPIPE caught (count=1)'), y después write devuelve EPIPE; el hijo lo anota y termina con estado 3. En los tres modos el resumen cuenta sigpipe=1."
