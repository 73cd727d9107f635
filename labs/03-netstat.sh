#!/usr/bin/env bash
# Exercise 3: the server's connections as ss and netstat list them: LISTEN,
# ESTABLISHED, TIME_WAIT with its timer, and the clients' ephemeral ports;
# then the same clients against the iterative server, where the second
# waits in the listening socket's queue.
source "$(dirname "$0")/lib.sh"

say "The range the kernel picks the clients' (ephemeral) ports from" \
    "El intervalo del que el núcleo elige los puertos (efímeros) de los clientes"
run cat /proc/sys/net/ipv4/ip_local_port_range

say "A server, alone: one socket in LISTEN, held by the parent" \
    "Un servidor, solo: un socket en LISTEN, del padre"
start_server 03-server
run_line "ss -tanp \"( sport = :$PORT )\""

say "Three clients that keep their connection open for 2 s without sending anything (--hold 2)" \
    "Tres clientes que mantienen su conexión abierta 2 s sin enviar nada (--hold 2)"
holders=()
for n in 1 2 3; do
    client_in_background --hold 2 < /dev/null
    holders+=("$CLIENT_PID")
done
wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/03-server.log') -ge 3 ]"
wait_until "[ \$(ss -tan state established '( sport = :$PORT )' | tail -n +2 | wc -l) -ge 3 ]"
run_line "ss -tanp \"( sport = :$PORT or dport = :$PORT )\""
if command -v netstat >/dev/null 2>&1; then
    run_line "netstat -tn | grep -E \"Proto|:$PORT\\b\""
else
    explain "(netstat is not installed here; ss shows the same. On Debian: apt-get install net-tools)" \
        "(netstat no está instalado aquí; ss muestra lo mismo. En Debian: apt-get install net-tools)"
fi
look "each connection appears twice, once per end: the client's (an ephemeral port -> $PORT) and the server's ($PORT -> that ephemeral port). Both ends are on this machine, so both are listed." \
    "cada conexión aparece dos veces, una por extremo: el del cliente (un puerto efímero -> $PORT) y el del servidor ($PORT -> ese puerto efímero). Los dos extremos están en esta máquina, así que salen los dos."
look "each server end is ESTABLISHED and held by a different child (users:, in ss -p), while LISTEN stays with the parent: fork gave each client a process of its own." \
    "cada extremo del servidor está ESTABLISHED y lo tiene un hijo distinto (users:, en ss -p), mientras que LISTEN se queda en el padre: fork ha dado a cada cliente un proceso propio."
say "A fourth client sends a line while the three hold their connections" \
    "Un cuarto cliente envía una línea mientras los tres mantienen sus conexiones"
printf 'a line\n' | client
look "its echo came back at once: its own child served it, whatever the other three do." \
    "su eco ha vuelto enseguida: lo ha atendido su propio hijo, hagan lo que hagan los otros tres."
wait "${holders[@]}"

say "After the clients are gone" "Cuando los clientes se han ido"
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/03-server.log') -ge 4 ]"
show_sockets
look "TIME-WAIT on the clients' ephemeral ports, with its timer (timer:(timewait,...), from ss -o): the end that closes first, here the client, which closes when its input ends, keeps the connection in TIME_WAIT for 60 s, so that late packets of this connection cannot be taken for part of a new one." \
    "TIME-WAIT en los puertos efímeros de los clientes, con su temporizador (timer:(timewait,...), de ss -o): el extremo que cierra primero, aquí el cliente, que cierra al acabarse su entrada, mantiene la conexión en TIME_WAIT durante 60 s, para que los paquetes rezagados de esta conexión no se tomen por parte de una nueva."
stop_server 03-server

say "The iterative server (--mode iterative): a client that keeps its connection open, then one that sends a line" \
    "El servidor secuencial (--mode iterative): un cliente que mantiene su conexión abierta, y después uno que envía una línea"
start_server 03-iterative --mode iterative
client_in_background --hold 60 < /dev/null
holder=$CLIENT_PID
wait_until "grep -q 'accepted' '$LAB_OUT/03-iterative.log'"
printf 'a line\n' | client_in_background
second=$CLIENT_PID
# The second connection is complete in the kernel, and waits in the queue
# of the listening socket: LISTEN's Recv-Q counts it.
wait_until "ss -Htln '( sport = :$PORT )' | awk '{ if (\$2 >= 1) found = 1 } END { exit !found }'"
run_line "ss -tanp \"( sport = :$PORT or dport = :$PORT )\""
look "the kernel made the second connection and took what the client sent: its server end holds the line in Recv-Q, and is in CLOSE-WAIT once the client's FIN (sent when its input ended) has come too. But no process holds that end (no users:), and LISTEN's Recv-Q is 1: the connection waits in the queue of those not yet accepted. The iterative server is busy with the first client and accepts no other until that one closes." \
    "el núcleo ha hecho la segunda conexión y ha recibido lo que envió el cliente: su extremo del servidor guarda la línea en Recv-Q, y está en CLOSE-WAIT cuando ha llegado también el FIN del cliente (que lo envía al acabarse su entrada). Pero ningún proceso tiene ese extremo (no hay users:), y el Recv-Q de LISTEN es 1: la conexión espera en la cola de las que aún no se han aceptado. El servidor secuencial está ocupado con el primer cliente y no acepta a otro hasta que ese cierre."
explain "the first client leaves:" "el primer cliente se va:"
kill_and_wait TERM "$holder"
wait "$second" 2>/dev/null || true
look "only now the second client got its echo (the line above): it waited all the time the first one held the server." \
    "solo ahora el segundo cliente ha recibido su eco (la línea de arriba): ha esperado todo el tiempo que el primero tuvo ocupado al servidor."
stop_server 03-iterative
