#!/usr/bin/env bash
# Exercise 5, with the lab's server: the same three clients against a
# server with the SIGCHLD reaper and against one without it (--no-reaper),
# with ps x before and after, and the status line of SIGUSR1.
source "$(dirname "$0")/lib.sh"

# The server and its children, as `ps x` lists them (your own processes),
# its line and theirs only.
server_and_children() {
    # shellcheck disable=SC2046 # one PID per word
    show_pids "" "$SERVER_PID" $(ps -o pid= --ppid "$SERVER_PID")
}

# Three short clients, one after another.
three_clients() {
    for n in 1 2 3; do
        printf 'client %s\n' "$n" | client
    done
}

for variant in with without; do
    if [ "$variant" = with ]; then
        say "A server WITH the reaper" "Un servidor CON reaper"
        start_server 05-$variant
    else
        say "A server WITHOUT the reaper (--no-reaper)" "Un servidor SIN reaper (--no-reaper)"
        start_server 05-$variant --no-reaper
    fi
    explain "before the clients:" "antes de los clientes:"
    server_and_children
    three_clients
    if [ "$variant" = with ]; then
        wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/05-$variant.log') -ge 3 ]"
    else
        wait_until "[ \$(ps -o stat= --ppid $SERVER_PID | grep -c Z) -ge 3 ]"
    fi
    explain "after the clients closed their connections:" "después de que los clientes cerraran sus conexiones:"
    server_and_children
    explain "SIGUSR1 asks the server for a status line:" "SIGUSR1 le pide al servidor una línea de estado:"
    run kill -USR1 "$SERVER_PID"
    wait_for_line "$LAB_OUT/05-$variant.log" "status:"
    grep "status:" "$LAB_OUT/05-$variant.log" | sed 's/^/    /'
    stop_server 05-$variant
    show_log 05-$variant
done

look "ps x lists your own processes only (never another user's zombies); awk keeps the header and this server's lines: the parent and its children, the PIDs that follow 'forked child' in its log." \
    "ps x lista solo tus propios procesos (nunca los zombis de otro usuario); awk se queda con la cabecera y las líneas de este servidor: el padre y sus hijos, los PID que siguen a 'forked child' en su registro."
look "with the reaper, ps shows only the parent once the clients are done: the SIGCHLD handler collected each child (waitpid) as it exited, and the log says 'reaped child'." \
    "con reaper, ps solo muestra al padre cuando los clientes terminan: el manejador de SIGCHLD ha recogido a cada hijo (waitpid) en cuanto terminó, y el registro dice 'reaped child'."
look "without it, each child that has finished stays as a zombie (STAT Z, <defunct>), holding its PID and its exit status until its parent waits for it. Here only the shutdown collects them; the status line counts them (zombies=3)." \
    "sin él, cada hijo que ha terminado se queda como zombi (STAT Z, <defunct>), con su PID y su estado de salida, hasta que su padre lo espera. Aquí solo los recoge el cierre; la línea de estado los cuenta (zombies=3)."
