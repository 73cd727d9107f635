#!/usr/bin/env bash
# Going further: exercise 2 "from other machines", on one laptop: three network
# namespaces (a server host and two client hosts) joined by veth pairs, the
# server in one, a client in each of the others, tcpdump in between.
source "$(dirname "$0")/lib.sh"

need_root "creating network namespaces" "crear espacios de nombres de red"
need_command ip iproute2

# Namespace names carry our PID, so that two runs never collide.
srv=lab-srv-$$
cli1=lab-cli1-$$
cli2=lab-cli2-$$

say "Three hosts: $srv (the server) and two clients, each on its own link" \
    "Tres máquinas: $srv (el servidor) y dos clientes, cada uno en su propio enlace"
topology="$cli1 10.80.1.2 <--veth--> 10.80.1.1 $srv 10.80.2.1 <--veth--> 10.80.2.2 $cli2"
explain "$topology" "$topology"
for ns in "$srv" "$cli1" "$cli2"; do
    run ip netns add "$ns"
    at_exit "ip netns del $ns"
    run ip -n "$ns" link set lo up
done
# One veth pair per client: a virtual cable, one end in each namespace.
link() { # link CLIENT_NS SUBNET
    local client=$1 subnet=$2
    run ip link add "s$subnet-$$" netns "$srv" type veth peer name "c$subnet-$$" netns "$client"
    run ip -n "$srv" addr add "10.80.$subnet.1/24" dev "s$subnet-$$"
    run ip -n "$client" addr add "10.80.$subnet.2/24" dev "c$subnet-$$"
    run ip -n "$srv" link set "s$subnet-$$" up
    run ip -n "$client" link set "c$subnet-$$" up
}
link "$cli1" 1
link "$cli2" 2
run ip -n "$srv" -brief addr

say "The server listens on every address of its host" "El servidor escucha en todas las direcciones de su máquina"
NETNS=$srv BIND=0.0.0.0 start_server 02-namespaces-server --delay 200

have_tcpdump=false
tcpdumps=()
if command -v tcpdump >/dev/null 2>&1; then
    have_tcpdump=true
    # One capture per link, on the server's end of each cable.
    for n in 1 2; do
        dev=s$n-$$
        pcap="$LAB_OUT/02-namespaces-link$n.pcap"
        printf '$ ip netns exec %s tcpdump -i %s -n -U --immediate-mode -Z root -w %s "tcp port %s" &\n' \
            "$srv" "$dev" "$pcap" "$PORT"
        setsid ip netns exec "$srv" tcpdump -i "$dev" -n -U --immediate-mode -Z root -w "$pcap" \
            "tcp port $PORT" 2>"$LAB_OUT/02-namespaces-link$n.err" &
        tcpdumps+=($!)
        at_exit "kill -KILL $!"
        wait_for_line "$LAB_OUT/02-namespaces-link$n.err" "listening on"
    done
else
    explain "(tcpdump is not installed: no capture this time. On Debian: apt-get install tcpdump)" \
        "(tcpdump no está instalado: esta vez no hay captura. En Debian: apt-get install tcpdump)"
fi

say "One client on each client host, at the same time" "Un cliente en cada máquina cliente, a la vez"
clients=()
for n in 1 2; do
    ns=cli$n
    printf '$ ip netns exec %s TCPecho 10.80.%s.1 %s\n' "${!ns}" "$n" "$PORT"
    printf 'hello from host %s\n' "$n" | ip netns exec "${!ns}" "$TCPECHO" "10.80.$n.1" "$PORT" &
    clients+=($!)
done
wait "${clients[@]}"
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/02-namespaces-server.log') -ge 2 ]"
if $have_tcpdump; then
    run kill -INT "${tcpdumps[@]}"
    wait "${tcpdumps[@]}" || true
    for n in 1 2; do
        say "What crossed link $n (client host $n <-> server host)" \
            "Lo que ha pasado por el enlace $n (máquina cliente $n <-> máquina servidor)"
        run tcpdump -n -r "$LAB_OUT/02-namespaces-link$n.pcap" 2>/dev/null
    done
    look "on each link, one connection: the handshake from 10.80.x.2 (from an ephemeral port of its own) to 10.80.x.1, the line, its echo 0.2 s later (--delay 200), and the two FINs. Compare the mss of the SYNs with the one on lo (exercise 2)." \
        "en cada enlace, una conexión: el establecimiento desde 10.80.x.2 (desde un puerto efímero propio) hacia 10.80.x.1, la línea, su eco 0,2 s después (--delay 200) y los dos FIN. Compara el mss de los SYN con el de lo (ejercicio 2)."
fi
stop_server 02-namespaces-server
show_log 02-namespaces-server
look "the server's log names each client by its host's address (10.80.1.2 and 10.80.2.2): to the server they are two different machines, as in the lab room." \
    "el registro del servidor nombra a cada cliente por la dirección de su máquina (10.80.1.2 y 10.80.2.2): para el servidor son dos máquinas distintas, como en el laboratorio."
