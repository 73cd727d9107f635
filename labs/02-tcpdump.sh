#!/usr/bin/env bash
# Exercise 2: the traffic of two clients, as tcpdump shows it on the
# server's port (-l: each packet printed as soon as it is seen), kept in
# 02-tcpdump.txt in the run's folder (labs/out/02-tcpdump/latest/).
#
# Capturing takes root (CAP_NET_RAW). As root (or with sudo), on this
# machine's lo. As a user, the script carries on in a private network of
# its own (labs/private-net.sh --new: a network namespace with its own lo,
# in which you may capture). Where no capture can be made (the kernel
# refuses users a private network, or tcpdump is missing), it shows a
# recorded capture instead, labs/recorded/02-tcpdump.txt, and says so and
# why. LAB_NO_USERNS=1 makes it act as if the kernel refused (for tests).
source "$(dirname "$0")/lib.sh"

# What to look at in a capture of this script's run.
what_to_look_at() {
    explain "Flags: [S] SYN, [S.] SYN+ACK, [.] ACK, [P.] data (PUSH), [F.] FIN, [R] RST." \
        "Indicadores: [S] SYN, [S.] SYN+ACK, [.] ACK, [P.] datos (PUSH), [F.] FIN, [R] RST."
    look "each connection opens with [S], [S.], [.] (the three-way handshake), from a port the client's kernel chose (an ephemeral port)." \
        "cada conexión empieza con [S], [S.], [.] (el establecimiento en tres pasos), desde un puerto que eligió el núcleo del cliente (un puerto efímero)."
    look "A: its line goes out in a [P.], followed at once by A's [F.] (its input is over: it closes its sending half); 0.1 s later (--delay) the echo comes back in a [P.], and then the server's [F.]." \
        "A: su línea sale en un [P.], seguido enseguida del [F.] de A (se acabó su entrada: cierra su mitad de envío); 0,1 s después (--delay) vuelve el eco en un [P.], y luego el [F.] del servidor."
    look "B: its [F.] comes after 'two', before any echo; the echo of 'one' reaches a socket that B has closed, and B's kernel answers with [R]. The child's next write then meets a broken connection (exercise 6: SIGPIPE)." \
        "B: su [F.] llega después de 'two', antes de ningún eco; el eco de 'one' llega a un socket que B ya ha cerrado, y el núcleo de B responde con [R]. La siguiente escritura del hijo se encuentra la conexión rota (ejercicio 6: SIGPIPE)."
}

# Why no capture can be made here, if none can; as a user, where one can,
# the script carries on in a private network.
no_capture=
if ! command -v tcpdump >/dev/null 2>&1; then
    no_capture=$(t "tcpdump is not installed here (on Debian: apt-get install tcpdump)" \
        "tcpdump no está instalado aquí (en Debian: apt-get install tcpdump)")
elif [ "$(id -u)" != 0 ] && [ -z "${LAB_PRIVATE_NET:-}" ]; then
    if why=$("$LAB_DIR/private-net.sh" --check 2>&1); then
        say "You are not root: the capture runs in a private network of this run's own" \
            "No eres root: la captura se hace en una red privada de esta ejecución"
        explain "a network namespace with a loopback (lo, 127.0.0.1) of its own, in which you may capture without root. By hand: labs/private-net.sh in each terminal." \
            "un espacio de nombres de red con un loopback (lo, 127.0.0.1) propio, en el que puedes capturar sin ser root. A mano: labs/private-net.sh en cada terminal."
        printf '$ labs/private-net.sh --new labs/02-tcpdump.sh\n'
        # The run goes on in there, in the same folder, with the same programs.
        export TCPECHOD TCPECHO LAB_RUN_DIR
        exec "$LAB_DIR/private-net.sh" --new bash "$0"
    fi
    no_capture=$(t "you are not root, and this system does not let you open a private network (${why#private-net: }); capturing here takes root (sudo labs/02-tcpdump.sh)" \
        "no eres root, y este sistema no te deja abrir una red privada (${why#private-net: }); capturar aquí necesita root (sudo labs/02-tcpdump.sh)")
fi
if [ -n "$no_capture" ]; then
    recording=$LAB_DIR/recorded/02-tcpdump.txt
    say "A RECORDED capture: not this machine's traffic" "Una captura GRABADA: no es el tráfico de esta máquina"
    explain "No capture can be made here: $no_capture. What follows was recorded with this same script, as root, on another machine; the lines starting with # say how." \
        "Aquí no se puede capturar: $no_capture. Lo que sigue se grabó con este mismo script, como root, en otra máquina; las líneas que empiezan por # dicen cómo."
    run cat "${recording#"$PWD"/}"
    what_to_look_at
    exit 0
fi

if [ -n "${LAB_PRIVATE_NET:-}" ]; then
    say "In the private network: a loopback of its own, and nothing else" \
        "En la red privada: un loopback propio, y nada más"
    run ip -brief addr
fi

say "A slow server (--delay 100), and tcpdump on its port" \
    "Un servidor lento (--delay 100), y tcpdump en su puerto"
start_server 02-server --delay 100
capture="$LAB_OUT/02-tcpdump.txt"
printf '$ tcpdump -l -n -i lo "tcp port %s" > %s &\n' "$PORT" "$capture"
setsid tcpdump -l -n -i lo "tcp port $PORT" >"$capture" 2>"$LAB_OUT/02-tcpdump.err" &
tcpdump_pid=$!
at_exit "kill -KILL $tcpdump_pid"
wait_for_line "$LAB_OUT/02-tcpdump.err" "listening on"

say "Client A echoes a line; client B sends two lines and closes without reading the echo" \
    "El cliente A recibe el eco de una línea; el cliente B envía dos líneas y cierra sin leer el eco"
client < <(printf 'hello from A\n')
client --interval 50 --no-read < <(printf 'one\ntwo\n')
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/02-server.log') -ge 2 ]"
# B's connection ends with the RST of B's kernel, the last packet of the
# capture; tcpdump prints it within a second or so.
wait_for_line "$capture" "Flags \[R" 10
run kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
stop_server 02-server

say "What tcpdump showed" "Lo que ha mostrado tcpdump"
run cat "$capture"
what_to_look_at
explain "kept in $capture" "guardado en $capture"
show_log 02-server
