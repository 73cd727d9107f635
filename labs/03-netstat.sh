#!/usr/bin/env bash
# Exercise 3: the server's connections as ss and netstat list them: LISTEN,
# ESTABLISHED, TIME_WAIT with its timer, and the clients' ephemeral ports.
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
wait "${holders[@]}"

say "After the clients are gone" "Cuando los clientes se han ido"
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/03-server.log') -ge 3 ]"
show_sockets
look "TIME-WAIT on the clients' ephemeral ports, with its timer (timer:(timewait,...), from ss -o): the end that closes first, here the client, which closes when its input ends, keeps the connection in TIME_WAIT for 60 s, so that late packets of this connection cannot be taken for part of a new one." \
    "TIME-WAIT en los puertos efímeros de los clientes, con su temporizador (timer:(timewait,...), de ss -o): el extremo que cierra primero, aquí el cliente, que cierra al acabarse su entrada, mantiene la conexión en TIME_WAIT durante 60 s, para que los paquetes rezagados de esta conexión no se tomen por parte de una nueva."
stop_server 03-server
