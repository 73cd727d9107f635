#!/usr/bin/env bash
# Exercise 4: clients that misbehave (one connects and says nothing, one
# sends without ever reading the echo, then dies in the middle) do not stop
# the server from serving everybody else: each has a child of its own.
# Where each child waits: ps (wchan) and, as root, /proc/PID/stack.
source "$(dirname "$0")/lib.sh"

start_server 04-server

say "Client A connects and sends nothing" "El cliente A se conecta y no envía nada"
client_in_background --hold 10 < /dev/null
idle=$CLIENT_PID
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/04-server.log') -ge 1 ]"
a_child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/04-server.log" | sed -n 1p)

say "Client B sends 64 MiB and never reads the echo (--no-read)" \
    "El cliente B envía 64 MiB y nunca lee el eco (--no-read)"
printf '$ head -c 64M /dev/zero | TCPecho --no-read 127.0.0.1 %s &\n' "$PORT"
head -c 64M /dev/zero | "$TCPECHO" --no-read 127.0.0.1 "$PORT" &
greedy=$!
at_exit "kill -KILL $greedy"
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/04-server.log') -ge 2 ]"
b_child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/04-server.log" | sed -n 2p)
b_port=$(sed -n 's/.*accepted 127.0.0.1:\([0-9]*\) on.*/\1/p' "$LAB_OUT/04-server.log" | sed -n 2p)
explain "nobody drains B's connection: its child fills it, and then blocks in write" \
    "nadie vacía la conexión de B: su hijo la llena, y se bloquea en write"
# Blocked: data waits at both ends of the server's socket, the child's
# unsent echo (Send-Q) and the part of B's data that the child no longer
# reads (Recv-Q).
stuck() {
    ss -tn "( sport = :$PORT and dport = :$b_port )" | awk 'NR == 2 && $2 > 0 && $3 > 0 { found = 1 } END { exit !found }'
}
wait_until stuck 20

say "Client C, meanwhile" "Mientras tanto, el cliente C"
start=$(now_ms)
client < <(printf 'is anybody there?\n')
explain "C was served in $(($(now_ms) - start)) ms" "C ha sido atendido en $(($(now_ms) - start)) ms"
show_processes wchan:32
if [ "$(id -u)" = 0 ]; then
    run cat "/proc/$a_child/stack"
    run cat "/proc/$b_child/stack"
else
    explain "(as root, cat /proc/$a_child/stack and cat /proc/$b_child/stack show where each child sleeps inside the kernel)" \
        "(como root, cat /proc/$a_child/stack y cat /proc/$b_child/stack muestran dónde duerme cada hijo dentro del núcleo)"
fi
show_sockets
look "three processes: the parent, and the children of A ($a_child) and B ($b_child), all three asleep (S). WCHAN says wait_woken for both children; the stack tells them apart: A's child waits for data to read (sk_wait_data, under tcp_recvmsg), B's for room to write (sk_stream_wait_memory, under tcp_sendmsg)." \
    "tres procesos: el padre y los hijos de A ($a_child) y de B ($b_child), los tres dormidos (S). WCHAN dice wait_woken en los dos hijos; la pila los distingue: el hijo de A espera datos que leer (sk_wait_data, bajo tcp_recvmsg), y el de B, sitio donde escribir (sk_stream_wait_memory, bajo tcp_sendmsg)."
look "A's connection is empty both ways. B's is full both ways: the echo waits in the child's Send-Q for B, which never reads it; B's data waits in B's Send-Q and in the child's Recv-Q, because the child, stuck in write, no longer reads either." \
    "la conexión de A está vacía en los dos sentidos. La de B está llena en los dos: el eco espera en el Send-Q del hijo a que B lo lea, y B nunca lo lee; los datos de B esperan en el Send-Q de B y en el Recv-Q del hijo, porque el hijo, atascado en write, ya tampoco lee."
look "C was served at once anyway. In an iterative server, A alone would have blocked everybody." \
    "aun así, C ha sido atendido enseguida. En un servidor secuencial, A habría bloqueado a todos él solo."

say "B is killed in the middle of its transfer" "Matamos a B en mitad de su envío"
kill_and_wait KILL "$greedy"
wait_until "grep -q 'reaped child $b_child' '$LAB_OUT/04-server.log'"
grep -E "child $b_child|reaped child $b_child" "$LAB_OUT/04-server.log" | sed 's/^/    /'
look "B's kernel closed its socket with data unread, and answered with RST: the write that B's child was blocked in failed (connection reset), the child logged it, exited with status 4 and was reaped. A and the server go on." \
    "el núcleo de B cerró su socket con datos sin leer y respondió con RST: la escritura en la que estaba bloqueado el hijo de B falló (connection reset), el hijo lo anotó, terminó con estado 4 y fue recogido. A y el servidor siguen."
kill_and_wait TERM "$idle"
stop_server 04-server

say "The previous lab's problem: the same silent client against the iterative server" \
    "El problema de la práctica anterior: el mismo cliente callado contra el servidor secuencial"
start_server 04-iterative --mode iterative
client_in_background --hold 10 < /dev/null
idle=$CLIENT_PID
wait_for_line "$LAB_OUT/04-iterative.log" "accepted"
explain "client C, given 2 s to get its echo:" "el cliente C, con 2 s para recibir su eco:"
status=0
printf '$ timeout 2 TCPecho 127.0.0.1 %s\n' "$PORT"
printf 'is anybody there?\n' | timeout 2 "$TCPECHO" 127.0.0.1 "$PORT" || status=$?
explain "exit status $status (124: the time ran out, and timeout stopped it with SIGTERM)" \
    "estado de salida $status (124: se acabó el tiempo, y timeout lo detuvo con SIGTERM)"
run_line "ss -tln \"( sport = :$PORT )\""
look "C got nothing: the iterative server is busy with the silent client A and accepts nobody else; C's connection waits in the queue of msock (Recv-Q of the LISTEN line)." \
    "C no ha recibido nada: el servidor secuencial está ocupado con el cliente callado A y no acepta a nadie más; la conexión de C espera en la cola de msock (Recv-Q de la línea LISTEN)."
kill_and_wait TERM "$idle"
stop_server 04-iterative
