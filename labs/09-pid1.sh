#!/usr/bin/env bash
# Going further, exercise C: the server as PID 1, the first process of a PID namespace, as
# in a container. The kernel does not deliver to PID 1 a signal that PID 1
# has no handler for: SIGTERM from outside is ignored unless the server
# catches it. And PID 1 adopts every orphan of its namespace, so it must
# reap children it never forked. First with unshare (no Docker needed),
# then, where Docker runs, with docker stop and docker run --init.
source "$(dirname "$0")/lib.sh"

need_root "creating a PID namespace" "crear un espacio de nombres de PID"
need_command unshare util-linux

# start_pid1 NAME [OPTIONS...]: TCPechod as PID 1 of a new PID namespace.
# Sets PID1 to its PID as seen from here (the namespace numbers it 1).
start_pid1() {
    local name=$1
    shift
    local log="$LAB_OUT/$name.log"
    printf '$ unshare --pid --fork --mount-proc TCPechod --bind 127.0.0.1 %s%s 2> %s &\n' \
        "${*:+$* }" "$LAB_PORT" "$log"
    setsid unshare --pid --fork --mount-proc "$TCPECHOD" --bind 127.0.0.1 "$@" "$LAB_PORT" 2>"$log" &
    SERVER_PID=$!
    at_exit "kill -KILL -- -$SERVER_PID"
    server_listening "$log"
    # unshare forked the server: it is unshare's only child.
    PID1=$(pgrep -P "$SERVER_PID" | head -n 1)
    explain "server $PID1 (PID 1 in its namespace) listening on port $PORT" \
        "servidor $PID1 (PID 1 en su espacio de nombres) escuchando en el puerto $PORT"
}

# Whether process $1 is gone (or a zombie waiting for unshare).
gone() {
    [ ! -e "/proc/$1" ] || [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]
}

say "PID 1 with a SIGTERM handler (the default)" "PID 1 con manejador de SIGTERM (lo normal)"
start_pid1 09-handler
run ps -o pid,ppid,stat,args -p "$PID1"
run kill -TERM "$PID1"
wait_until "gone $PID1"
wait "$SERVER_PID" || true
show_log 09-handler
look "the log says [parent 1]: inside its namespace the server is PID 1. It has a handler for SIGTERM, so the signal is delivered, and the server ends gracefully, with its summary." \
    "el registro dice [parent 1]: dentro de su espacio de nombres el servidor es el PID 1. Tiene manejador de SIGTERM, así que la señal se entrega, y el servidor termina de forma ordenada, con su resumen."

say "PID 1 without a SIGTERM handler (--no-sigterm-handler)" "PID 1 sin manejador de SIGTERM (--no-sigterm-handler)"
start_pid1 09-nohandler --no-sigterm-handler
run kill -TERM "$PID1"
explain "a moment later, it is still there:" "un momento después, sigue ahí:"
# A second client served shows that the server is alive and well after the signal.
printf 'still alive?\n' | client
run ps -o pid,ppid,stat,args -p "$PID1"
run kill -KILL "$PID1"
wait_until "gone $PID1"
wait "$SERVER_PID" || true
explain "SIGKILL ended it: no summary in its log" "SIGKILL lo ha terminado: no hay resumen en su registro"
show_log 09-nohandler
look "the same SIGTERM that kills an ordinary process without a handler did nothing: the kernel does not deliver to PID 1 a signal it has no handler for (only SIGKILL and SIGSTOP, sent from outside the namespace, get through). This is why 'docker stop' waits for its timeout and then sends SIGKILL to a container whose first process has no SIGTERM handler." \
    "el mismo SIGTERM que mata a un proceso normal sin manejador no ha hecho nada: el núcleo no entrega al PID 1 una señal para la que no tiene manejador (solo pasan SIGKILL y SIGSTOP, enviadas desde fuera del espacio de nombres). Por eso 'docker stop' agota su plazo y envía después SIGKILL a un contenedor cuyo primer proceso no tiene manejador de SIGTERM."

for reaper in with without; do
    if [ $reaper = with ]; then
        say "PID 1 adopts an orphan, and reaps it (the reaper)" "El PID 1 adopta a un huérfano, y lo recoge (el reaper)"
        start_pid1 09-orphan-$reaper
    else
        say "PID 1 adopts an orphan, without the reaper (--no-reaper)" "El PID 1 adopta a un huérfano, sin reaper (--no-reaper)"
        start_pid1 09-orphan-$reaper --no-reaper
    fi
    explain "a shell enters the namespace, starts 'sleep 600' in the background and exits:" \
        "un shell entra en el espacio de nombres, arranca 'sleep 600' en segundo plano y termina:"
    printf '$ nsenter --target %s --pid --mount sh -c '"'"'sleep 600 & echo $!'"'"'\n' "$PID1"
    nsenter --target "$PID1" --pid --mount sh -c 'sleep 600 >/dev/null 2>&1 & echo $!' > "$LAB_OUT/09-orphan.pid"
    inner=$(cat "$LAB_OUT/09-orphan.pid")
    orphan=$(pgrep -P "$PID1" -x sleep | head -n 1)
    explain "sleep is PID $inner in the namespace, $orphan here; its parent, the shell, is gone:" \
        "sleep es el PID $inner en el espacio de nombres, el $orphan aquí; su padre, el shell, ya no está:"
    run ps -o pid,ppid,stat,args -p "$PID1,$orphan"
    run kill -TERM "$orphan"
    if [ $reaper = with ]; then
        wait_for_line "$LAB_OUT/09-orphan-$reaper.log" "reaped child $inner"
    else
        wait_until "[ \"\$(ps -o stat= -p $orphan | cut -c1)\" = Z ]"
    fi
    run ps -o pid,ppid,stat,args -p "$PID1,$orphan"
    run kill -TERM "$PID1"
    wait_until "gone $PID1"
    wait "$SERVER_PID" || true
    show_log 09-orphan-$reaper
done
look "the orphan's PPID became PID 1 of its namespace, the server, which never forked it. With the reaper, its SIGCHLD handler collected it as it collects its own children ('reaped child'): waitpid(-1, ...) takes any child. Without it the orphan stays a zombie (Z) until the shutdown installs the reaper. A PID 1 that neither handles SIGTERM nor reaps is why 'docker run --init' exists: it puts a small init (tini) first, which forwards signals and reaps." \
    "el PPID del huérfano ha pasado a ser el PID 1 de su espacio de nombres, el servidor, que nunca lo creó. Con reaper, su manejador de SIGCHLD lo ha recogido igual que recoge a sus propios hijos ('reaped child'): waitpid(-1, ...) acepta cualquier hijo. Sin él, el huérfano se queda zombi (Z) hasta que el cierre instala el reaper. Para un PID 1 que ni atiende SIGTERM ni recoge hijos existe 'docker run --init': pone delante un init pequeño (tini), que reenvía las señales y recoge a los hijos."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    say "The same with Docker: skipped" "Lo mismo con Docker: omitido"
    explain "(Docker is not running here: start it, and run make docker-image, to see this part)" \
        "(Docker no está en marcha aquí: arráncalo, y ejecuta make docker-image, para ver esta parte)"
    exit 0
fi

say "The same with Docker: docker stop -t 1, timed" "Lo mismo con Docker: docker stop -t 1, cronometrado"
# quietly COMMAND...: shows the command and runs it, without its output.
quietly() {
    printf '$ %s\n' "$*"
    "$@" >/dev/null
}
if ! docker image inspect tcpechod-server >/dev/null 2>&1; then
    printf '$ make -s docker-image\n'
    "${BUILD_LOCK[@]}" make -s -C "$ROOT" docker-image >/dev/null
fi
for variant in handler nohandler init; do
    name=tcpechod-server-pid1-$variant-$$
    case $variant in
        handler) args=(docker run -d --name "$name" tcpechod-server) ;;
        nohandler) args=(docker run -d --name "$name" tcpechod-server --no-sigterm-handler 8000) ;;
        init) args=(docker run -d --init --name "$name" tcpechod-server --no-sigterm-handler 8000) ;;
    esac
    at_exit "docker rm -f $name"
    quietly "${args[@]}"
    wait_until "docker logs $name 2>&1 | grep -q 'listening on'"
    start=$(now_ms)
    quietly docker stop -t 1 "$name"
    took=$(($(now_ms) - start))
    code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
    explain "docker stop took $took ms; exit status $code" "docker stop ha tardado $took ms; estado de salida $code"
    docker logs "$name" 2>&1 | tail -n 3 | sed 's/^/    /'
    docker rm -f "$name" >/dev/null
done
look "with the handler, docker stop sends SIGTERM and the server ends at once: exit status 0 and its summary. Without it, SIGTERM to PID 1 is ignored: docker stop waits its 1 s and sends SIGKILL, exit status 137 (128 + 9), no summary. With --init, tini is PID 1 and the server is not: tini forwards SIGTERM, whose default action ends the server at once, exit status 143 (128 + 15)." \
    "con el manejador, docker stop envía SIGTERM y el servidor termina enseguida: estado de salida 0 y su resumen. Sin él, el SIGTERM al PID 1 se ignora: docker stop espera su segundo y envía SIGKILL, estado de salida 137 (128 + 9), sin resumen. Con --init, el PID 1 es tini y no el servidor: tini reenvía SIGTERM, cuya acción por omisión termina el servidor enseguida, estado de salida 143 (128 + 15)."
