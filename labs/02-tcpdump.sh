#!/usr/bin/env bash
# Exercise 2: the traffic of two clients, as tcpdump shows it on the
# server's port (-l: each packet printed as soon as it is seen), kept in
# 02-tcpdump.txt in the run's folder (labs/out/02-tcpdump/latest/).
source "$(dirname "$0")/lib.sh"

need_command tcpdump tcpdump
need_root "capturing packets" "capturar paquetes"

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
explain "Flags: [S] SYN, [S.] SYN+ACK, [.] ACK, [P.] data (PUSH), [F.] FIN, [R] RST." \
    "Indicadores: [S] SYN, [S.] SYN+ACK, [.] ACK, [P.] datos (PUSH), [F.] FIN, [R] RST."
look "each connection opens with [S], [S.], [.] (the three-way handshake), from a port the client's kernel chose (an ephemeral port)." \
    "cada conexión empieza con [S], [S.], [.] (el establecimiento en tres pasos), desde un puerto que eligió el núcleo del cliente (un puerto efímero)."
look "A: its line goes out in a [P.], followed at once by A's [F.] (its input is over: it closes its sending half); 0.1 s later (--delay) the echo comes back in a [P.], and then the server's [F.]." \
    "A: su línea sale en un [P.], seguido enseguida del [F.] de A (se acabó su entrada: cierra su mitad de envío); 0,1 s después (--delay) vuelve el eco en un [P.], y luego el [F.] del servidor."
look "B: its [F.] comes after 'two', before any echo; the echo of 'one' reaches a socket that B has closed, and B's kernel answers with [R]. The child's next write then meets a broken connection (exercise 6: SIGPIPE)." \
    "B: su [F.] llega después de 'two', antes de ningún eco; el eco de 'one' llega a un socket que B ya ha cerrado, y el núcleo de B responde con [R]. La siguiente escritura del hijo se encuentra la conexión rota (ejercicio 6: SIGPIPE)."
explain "kept in $capture" "guardado en $capture"
show_log 02-server
