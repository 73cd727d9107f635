#!/usr/bin/env bash
# Going further, "broken on purpose": three toggles remove one line each
# from the server (--leak-asock, --leak-msock, --no-reuseaddr), so that you
# see what that line is for.
source "$(dirname "$0")/lib.sh"

fds() { ls "/proc/$1/fd" | wc -l; }

say "--leak-asock: the parent does not close the sockets it accepts" \
    "--leak-asock: el padre no cierra los sockets que acepta"
start_server 08-leak-asock --leak-asock
explain "the parent has $(fds "$SERVER_PID") descriptors open; now three clients:" \
    "el padre tiene $(fds "$SERVER_PID") descriptores abiertos; ahora, tres clientes:"
for n in 1 2 3; do printf 'client %s\n' "$n" | client; done
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/08-leak-asock.log') -ge 3 ]"
# Each client's FIN acknowledged (FIN-WAIT-1 becomes FIN-WAIT-2).
wait_until "! ss -tan state fin-wait-1 '( dport = :$PORT )' | grep -q ':$PORT'"
explain "the parent has $(fds "$SERVER_PID") descriptors open" \
    "el padre tiene $(fds "$SERVER_PID") descriptores abiertos"
run_line "ss -tanp \"( sport = :$PORT or dport = :$PORT )\""
look "three more descriptors in the parent, one per client, and never fewer: with enough clients the server runs out of descriptors (accept fails with EMFILE)." \
    "tres descriptores más en el padre, uno por cliente, y nunca menos: con suficientes clientes el servidor se queda sin descriptores (accept falla con EMFILE)."
look "the server's ends stay in CLOSE-WAIT, held by the parent (ss -p): the clients' FIN came, but the kernel sends the server's FIN only when the LAST descriptor of a socket is closed, and the parent still holds one. The clients' ends wait in FIN-WAIT-2 for a FIN that never comes." \
    "los extremos del servidor se quedan en CLOSE-WAIT, en manos del padre (ss -p): el FIN de los clientes llegó, pero el núcleo solo envía el FIN del servidor cuando se cierra el ÚLTIMO descriptor de un socket, y el padre aún tiene uno. Los extremos de los clientes esperan en FIN-WAIT-2 un FIN que nunca llega."
stop_server 08-leak-asock

say "--leak-msock: the children keep the listening socket" \
    "--leak-msock: los hijos se quedan con el socket que escucha"
start_server 08-leak-msock --leak-msock
client_in_background --hold 5 < /dev/null
wait_for_line "$LAB_OUT/08-leak-msock.log" "NOT closing msock"
explain "kill -9: the parent dies at once, its children live on" \
    "kill -9: el padre muere al instante, sus hijos siguen vivos"
kill_server KILL
show_log 08-leak-msock
run_line "ss -tlnp \"( sport = :$PORT )\""
status=0
run "$TCPECHOD" --bind 127.0.0.1 "$PORT" || status=$?
explain "exit status $status" "estado de salida $status"
look "the port is still in LISTEN, held by the orphaned child (ss -p): a new server cannot bind it, and new clients would wait in a queue that nobody accepts from. A correct child closes msock right after fork; then a killed parent frees its port at once." \
    "el puerto sigue en LISTEN, en manos del hijo huérfano (ss -p): un servidor nuevo no puede hacer bind en él, y los clientes nuevos esperarían en una cola de la que nadie acepta. Un hijo correcto cierra msock nada más hacer fork; así, un padre muerto libera su puerto al instante."
kill -KILL -- "-$SERVER_PID" 2>/dev/null || true

say "--no-reuseaddr: starting again while old connections are in TIME_WAIT" \
    "--no-reuseaddr: volver a arrancar mientras quedan conexiones antiguas en TIME_WAIT"
# A closing that ends in TIME_WAIT, made and then looked for. On a very
# busy machine the kernel may end a connection otherwise (with a reset,
# which leaves no TIME_WAIT); then the script says so, shows the server's
# log, and makes another (three tries).
tries=0
while :; do
    tries=$((tries + 1))
    start_server "08-first-$tries"
    client_in_background --hold 60 < /dev/null
    first=$CLIENT_PID
    client_in_background --hold 60 < /dev/null
    second=$CLIENT_PID
    wait_until "[ \$(grep -c 'forked child' '$LAB_OUT/08-first-$tries.log') -ge 2 ]"
    explain "the server shuts down first (its FIN goes first), so its end of each connection ends in TIME_WAIT" \
        "el servidor se cierra primero (su FIN va primero), así que su extremo de cada conexión acaba en TIME_WAIT"
    stop_server "08-first-$tries"
    # Each client ends as soon as it reads the server's FIN (its --hold is
    # cut short), and sends its own: the server's end goes from FIN-WAIT-2
    # to TIME-WAIT. Waited for as the kernel shows it: every socket of the
    # port settled (none in the states of a closing still under way), then
    # TIME-WAIT.
    wait "$first" "$second" 2>/dev/null || true
    settled="! ss -Htan '( sport = :$PORT or dport = :$PORT )' | grep -qvE '^(TIME-WAIT|LISTEN)'"
    wait_until "$settled" 60 || {
        show_sockets
        exit 1
    }
    if ss -Htan state time-wait "( sport = :$PORT )" | grep -q ":$PORT"; then
        break
    fi
    show_sockets
    explain "no connection of the server's is in TIME_WAIT: a closing ended with a reset (RST), which leaves none. The server's log:" \
        "ninguna conexión del servidor está en TIME_WAIT: un cierre acabó con un reinicio (RST), que no deja ninguna. El registro del servidor:"
    show_log "08-first-$tries"
    if [ "$tries" -ge 3 ]; then
        exit 1
    fi
    explain "once more" "otra vez"
done
show_sockets
status=0
run "$TCPECHOD" --no-reuseaddr --bind 127.0.0.1 "$PORT" || status=$?
explain "exit status $status" "estado de salida $status"
LAB_PORT=$PORT start_server 08-restarted
look "without SO_REUSEADDR, bind refuses a port that still has connections in TIME_WAIT (for 60 s); with it (the default, set where msock is made) the server starts again at once." \
    "sin SO_REUSEADDR, bind rechaza un puerto que aún tiene conexiones en TIME_WAIT (durante 60 s); con ella (lo normal, se pone al crear msock) el servidor vuelve a arrancar enseguida."
stop_server 08-restarted
