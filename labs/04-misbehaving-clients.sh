#!/usr/bin/env bash
# Exercise 4: clients that misbehave (one connects and says nothing, one
# sends without ever reading the echo, then dies in the middle) do not stop
# the server from serving everybody else: each has a child of its own.
# Where each child waits: ps (wchan), which says the same for both; what
# tells them apart without privileges: the queues of their sockets (ss -tnp)
# and the system call each is blocked in (/proc/PID/syscall); and, as root,
# the kernel's stack (/proc/PID/stack; labs/recorded/04-stack.txt has one).
source "$(dirname "$0")/lib.sh"

# syscall_name NUMBER: the name of system call NUMBER on this machine (the
# numbers differ from one architecture to another), among those a child of
# the server can be blocked in.
syscall_name() {
    case "$(uname -m):$1" in
        x86_64:0 | aarch64:63) echo read ;;
        x86_64:1 | aarch64:64) echo write ;;
        x86_64:45 | aarch64:207) echo recvfrom ;;
        x86_64:44 | aarch64:206) echo sendto ;;
        x86_64:275 | aarch64:76) echo splice ;;
        x86_64:7) echo poll ;;
        x86_64:271 | aarch64:73) echo ppoll ;;
        *) t "number $1 on $(uname -m) (man 2 syscall names them)" "número $1 en $(uname -m) (man 2 syscall los nombra)" ;;
    esac
}

# queues_of PID: "RECV-Q SEND-Q" of the socket that child PID serves (its
# end of the connection, on the server's port).
queues_of() {
    ss -Htnp "( sport = :$PORT )" | awk -v pid="pid=$1," 'index($0, pid) { print $2, $3; exit }'
}

# where_it_waits WHO PID: what the queues of its socket, and the system
# call it is blocked in, say about where child PID waits.
where_it_waits() {
    local who=$1 pid=$2 recv send line call
    read -r recv send <<<"$(queues_of "$pid")"
    if [ "${recv:-0}" = 0 ] && [ "${send:-0}" = 0 ]; then
        explain "$who's child ($pid): Recv-Q 0, Send-Q 0: nothing arrived to read and nothing waits to go out: it waits to read." \
            "el hijo de $who ($pid): Recv-Q 0, Send-Q 0: no ha llegado nada que leer ni queda nada por salir: espera para leer."
    else
        explain "$who's child ($pid): Recv-Q $recv, Send-Q $send: its echo waits to go out, and what came is not read: it waits to write." \
            "el hijo de $who ($pid): Recv-Q $recv, Send-Q $send: su eco espera para salir, y lo que llegó no se lee: espera para escribir."
    fi
    printf '$ cat /proc/%s/syscall\n' "$pid"
    if line=$(cat "/proc/$pid/syscall" 2>/dev/null); then
        printf '%s\n' "$line"
        call=${line%% *}
        case $call in
            running) explain "(it was running just then)" "(justo entonces se estaba ejecutando)" ;;
            -1) explain "(blocked, but not in a system call)" "(bloqueado, pero no en una llamada al sistema)" ;;
            *) explain "system call $call = $(syscall_name "$call") (the first number; the others are its arguments, the descriptor first)" \
                "llamada al sistema $call = $(syscall_name "$call") (el primer número; los demás son sus argumentos, el descriptor primero)" ;;
        esac
    else
        explain "(cannot read it here: /proc/PID/syscall is for processes you may trace, and $(yama_rule))" \
            "(aquí no se puede leer: /proc/PID/syscall es para procesos que puedes trazar, y $(yama_rule))"
    fi
}

# Why a process of yours may not be traced: Yama's rule, where there is one.
yama_rule() {
    local scope
    scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo none)
    case $scope in
        1) t "kernel.yama.ptrace_scope = 1 here: only its ancestors" "aquí kernel.yama.ptrace_scope = 1: solo sus antepasados" ;;
        none) t "this kernel refuses it" "este núcleo lo impide" ;;
        *) t "kernel.yama.ptrace_scope = $scope here: only root" "aquí kernel.yama.ptrace_scope = $scope: solo root" ;;
    esac
}

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
# C's child has ended: the listing waits until the parent has reaped it
# and gone back to sleep, so that it shows the three that are left.
wait_until "grep -q 'reaped child' '$LAB_OUT/04-server.log'"
wait_until "ps -o stat= -p $SERVER_PID | grep -q '^S'"
show_processes wchan:32
look "three processes: the parent, and the children of A ($a_child) and B ($b_child), all three asleep (S). WCHAN says wait_woken for both children: ps does not tell them apart." \
    "tres procesos: el padre y los hijos de A ($a_child) y de B ($b_child), los tres dormidos (S). WCHAN dice wait_woken en los dos hijos: ps no los distingue."

say "Where each child waits, seen from its socket: ss -tnp, the server's end of each connection" \
    "Dónde espera cada hijo, visto desde su socket: ss -tnp, el extremo del servidor de cada conexión"
run_line "ss -tnp \"( sport = :$PORT )\""
where_it_waits A "$a_child"
where_it_waits B "$b_child"
if [ "$(id -u)" = 0 ]; then
    run cat "/proc/$a_child/stack"
    run cat "/proc/$b_child/stack"
    look "the stack tells them apart too: A's child waits for data to read (sk_wait_data, under tcp_recvmsg), B's for room to write (sk_stream_wait_memory, under tcp_sendmsg)." \
        "la pila también los distingue: el hijo de A espera datos que leer (sk_wait_data, bajo tcp_recvmsg), y el de B, sitio donde escribir (sk_stream_wait_memory, bajo tcp_sendmsg)."
else
    explain "(/proc/PID/stack, the kernel's own stack of each child, is for root only: labs/recorded/04-stack.txt has one, recorded as root: sk_wait_data for A's child, sk_stream_wait_memory for B's)" \
        "(/proc/PID/stack, la pila del propio núcleo de cada hijo, es solo para root: labs/recorded/04-stack.txt tiene una, grabada como root: sk_wait_data en el hijo de A, sk_stream_wait_memory en el de B)"
fi
look "users: in ss names the process that holds each socket: you see it for your own processes, no privileges needed. The queues say where each child waits, and the system call says it too: read for A's child, write for B's." \
    "users: en ss nombra el proceso que tiene cada socket: lo ves en tus propios procesos, sin privilegios. Las colas dicen dónde espera cada hijo, y la llamada al sistema también: read en el hijo de A, write en el de B."
show_sockets
look "A's connection is empty both ways. B's is full both ways: the echo waits in the child's Send-Q for B, which never reads it; B's data waits in B's Send-Q and in the child's Recv-Q, because the child, stuck in write, no longer reads either." \
    "la conexión de A está vacía en los dos sentidos. La de B está llena en los dos: el eco espera en el Send-Q del hijo a que B lo lea, y B nunca lo lee; los datos de B esperan en el Send-Q de B y en el Recv-Q del hijo, porque el hijo, atascado en write, ya tampoco lee."
look "C was served at once anyway. In an iterative server, A alone would have blocked everybody." \
    "aun así, C ha sido atendido enseguida. En un servidor secuencial, A habría bloqueado a todos él solo."

say "B is stopped in the middle of its transfer with SIGINT, as Ctrl-C does at its terminal" \
    "Paramos a B en mitad de su envío con SIGINT, como hace Ctrl-C en su terminal"
kill_and_wait INT "$greedy"
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
