#!/usr/bin/env bash
# Exercise 7, with the lab's server: graceful shutdown. SIGTERM to the
# server while clients are connected, with the log of every resource
# closed; what Ctrl-C does instead; the grace period and SIGKILL; and what
# happens without a SIGTERM handler.
source "$(dirname "$0")/lib.sh"

say "SIGTERM to the parent while three clients are connected (--grace 3)" \
    "SIGTERM al padre con tres clientes conectados (--grace 3)"
start_server 07-graceful --grace 3
explain "two idle clients (connected, nothing sent) and one that sends a line every 0.2 s" \
    "dos clientes callados (conectados, sin enviar nada) y uno que envía una línea cada 0,2 s"
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
lines=$(wc -l < "$LAB_OUT/07-talker.out")
explain "the talking client got back $(plural "$lines" line lines) and exited with status $talker_status:" \
    "el cliente que hablaba ha recibido $(plural "$lines" línea líneas) de vuelta y ha terminado con estado $talker_status:"
sed 's/^/    /' "$LAB_OUT/07-talker.err"
look "the parent stops accepting and closes msock first, then sends SIGTERM to each child. Each child stops reading, echoes what it had read, sends its FIN (the end of the echo), waits for the client's FIN, closes asock, logs it and exits 0; the parent reaps them all and prints the summary." \
    "el padre deja de aceptar y cierra msock primero, y después envía SIGTERM a cada hijo. Cada hijo deja de leer, devuelve lo que ya había leído, envía su FIN (el final del eco), espera el FIN del cliente, cierra asock, lo anota y termina con 0; el padre los recoge a todos e imprime el resumen."
look "the talking client got the echo of everything its child had read, and then the end of the echo: it stops sending and says that the server closed. Had the child closed at once, with the client's newer lines unread, its kernel would have answered them with RST, and an RST throws away any echo still on its way to the client." \
    "el cliente que hablaba ha recibido el eco de todo lo que su hijo había leído, y después el final del eco: deja de enviar y dice que el servidor ha cerrado. Si el hijo hubiera cerrado enseguida, con las últimas líneas del cliente sin leer, su núcleo les habría respondido con RST, y un RST tira todo eco que aún vaya de camino al cliente."

say "The port is free again at once" "El puerto vuelve a estar libre enseguida"
run_line "ss -tanl \"( sport = :$PORT )\""
LAB_PORT=$PORT start_server 07-restarted
stop_server 07-restarted

say "A child that cannot finish in time: --delay 5000 (5 s per echo) and --grace 1" \
    "Un hijo que no acaba a tiempo: --delay 5000 (5 s por eco) y --grace 1"
start_server 07-slow --delay 5000 --grace 1
client_in_background < <(printf 'too slow\n') > /dev/null 2> "$LAB_OUT/07-slow-client.err"
slow=$CLIENT_PID
wait_for_line "$LAB_OUT/07-slow.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-slow.log" | head -n 1)
# The child has read the line once it sleeps in its delay (ps: WCHAN
# poll_schedule_timeout or the like: the delay is a ppoll that a stop
# signal can cut short).
wait_until "ps -o wchan:32= -p $child | grep -qE 'poll|sleep'"
show_pids pid,stat,wchan:32,args "$child"
stop_server 07-slow
wait "$slow" || true
grep -E "SIGTERM|finished|reaped|grace|SIGKILL|shutdown" "$LAB_OUT/07-slow.log" | sed 's/^/    /'
look "the child keeps to the grace period on its own, a little shorter than its parent's: it gives up, says so (finished: 0 bytes echoed, cut after the grace period) and exits with status 5. The summary counts it as cut=1; nobody had to be killed (killed=0)." \
    "el hijo respeta el plazo de gracia por su cuenta, algo más corto que el de su padre: se rinde, lo dice (finished: 0 bytes echoed, cut after the grace period) y termina con estado 5. El resumen lo cuenta como cut=1; no hizo falta matar a nadie (killed=0)."

say "A child that cannot end at all: stopped with kill -STOP, and --grace 1" \
    "Un hijo que no puede terminar: detenido con kill -STOP, y --grace 1"
start_server 07-stopped --grace 1
client_in_background --hold 30 < /dev/null
holder=$CLIENT_PID
wait_for_line "$LAB_OUT/07-stopped.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-stopped.log" | head -n 1)
run kill -STOP "$child"
wait_until "ps -o stat= -p $child | grep -q T"
show_pids pid,ppid,stat,args "$child"
stop_server 07-stopped
wait "$holder" || true
grep -E "SIGTERM|grace|SIGKILL|reaped|shutdown" "$LAB_OUT/07-stopped.log" | sed 's/^/    /'
look "a stopped child (state T) cannot run its handler: after 1 s of grace the parent sends SIGKILL, which cannot be caught nor blocked, and ends it even stopped: killed=1. This is what 'docker stop -t 1' does to a container: SIGTERM, a timeout, then SIGKILL." \
    "un hijo detenido (estado T) no puede ejecutar su manejador: tras 1 s de gracia el padre envía SIGKILL, que no se puede capturar ni bloquear, y lo termina aunque esté detenido: killed=1. Es lo que hace 'docker stop -t 1' con un contenedor: SIGTERM, un plazo y después SIGKILL."

say "Without a SIGTERM handler (--no-sigterm-handler)" "Sin manejador de SIGTERM (--no-sigterm-handler)"
start_server 07-nohandler --no-sigterm-handler
client_in_background --hold 2 < /dev/null
holder=$CLIENT_PID
wait_for_line "$LAB_OUT/07-nohandler.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-nohandler.log" | head -n 1)
show_pids pid,ppid,stat,args "$SERVER_PID" "$child"
kill_server TERM
explain "SIGTERM killed the parent: no summary in its log" \
    "SIGTERM ha matado al padre: no hay resumen en su registro"
show_pids pid,ppid,stat,args "$child"
look "the parent died at once, without closing anything itself or telling its children. The child lives on and still serves its client; it was an orphan, and was adopted: its PPID is now init's (1) or that of the nearest ancestor that asked to adopt orphans (a 'subreaper', such as systemd --user)." \
    "el padre ha muerto al instante, sin cerrar nada por su cuenta ni avisar a sus hijos. El hijo sigue vivo y sigue atendiendo a su cliente; se quedó huérfano y lo han adoptado: su PPID es ahora el de init (1) o el del antepasado más cercano que haya pedido adoptar huérfanos (un 'subreaper', como systemd --user)."
wait "$holder" || true
show_log 07-nohandler

say "What Ctrl-C does: SIGINT to the whole process group of the terminal (kill -INT -- -PGID), again without a handler" \
    "Lo que hace Ctrl-C: SIGINT a todo el grupo de procesos del terminal (kill -INT -- -PGID), otra vez sin manejador"
start_server 07-ctrl-c --no-sigterm-handler
client_in_background --hold 2 < /dev/null
holder=$CLIENT_PID
wait_for_line "$LAB_OUT/07-ctrl-c.log" "forked child"
child=$(sed -n 's/.*forked child \([0-9]*\)$/\1/p' "$LAB_OUT/07-ctrl-c.log" | head -n 1)
show_pids pid,ppid,pgid,stat,args "$SERVER_PID" "$child"
run kill -INT -- "-$SERVER_PID"
wait_until "! kill -0 -- -$SERVER_PID 2>/dev/null" 15
wait "$SERVER_PID" 2>/dev/null || true
show_pids pid,ppid,pgid,stat,args "$SERVER_PID" "$child"
wait "$holder" || true
look "this time the child is gone too: a child is in its parent's process group (PGID), and the terminal sends SIGINT to every process of its foreground group, so the child got SIGINT straight from the terminal, at the same time as its parent, and without a handler it died of it. With the handler, each child starts its own graceful end when its SIGINT comes, whatever the parent does; its log says 'stopped reading on' the stop signal that came first, SIGINT or the parent's SIGTERM. When the order matters, send SIGTERM to the parent alone: kill -TERM PID." \
    "esta vez el hijo tampoco está: un hijo está en el grupo de procesos de su padre (PGID), y el terminal envía SIGINT a todos los procesos de su grupo en primer plano, así que el hijo ha recibido SIGINT directamente del terminal, a la vez que su padre, y sin manejador ha muerto por ella. Con el manejador, cada hijo empieza su propio cierre ordenado al llegarle su SIGINT, haga lo que haga el padre; su registro dice 'stopped reading on' con la señal de parada que llegó primero, SIGINT o el SIGTERM del padre. Cuando importe el orden, envía SIGTERM solo al padre: kill -TERM PID."
