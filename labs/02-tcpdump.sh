#!/usr/bin/env bash
# Exercise 2: the traffic of two clients, captured with tcpdump on the
# server's port and saved as a pcap file (open it later with
# `tcpdump -nr FILE` or Wireshark).
source "$(dirname "$0")/lib.sh"

need_command tcpdump tcpdump
need_root "capturing packets"

say "A slow server (--delay 100), and tcpdump on its port"
start_server 02-server --delay 100
pcap="$LAB_OUT/02-tcpdump.pcap"
# -U and --immediate-mode: hand over and write each packet at once;
# -Z root: keep the right to write $pcap.
printf '$ tcpdump -i lo -n -U --immediate-mode -Z root -w %s "tcp port %s" &\n' "$pcap" "$PORT"
setsid tcpdump -i lo -n -U --immediate-mode -Z root -w "$pcap" "tcp port $PORT" 2>"$LAB_OUT/02-tcpdump.err" &
tcpdump_pid=$!
at_exit "kill -KILL $tcpdump_pid"
wait_for_line "$LAB_OUT/02-tcpdump.err" "listening on"

say "Client A echoes a line; client B sends two lines and closes without reading"
client < <(printf 'hello from A\n')
client --interval 50 --no-read < <(printf 'one\ntwo\n')
wait_until "[ \$(grep -c 'reaped child' '$LAB_OUT/02-server.log') -ge 2 ]"
run kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
stop_server 02-server

say "The capture, decoded"
run tcpdump -n -r "$pcap" 2>/dev/null
explain "Flags: [S] SYN, [S.] SYN+ACK, [.] ACK, [P.] data (PUSH), [F.] FIN, [R] RST."
look "each connection opens with [S], [S.], [.] (the three-way handshake) from a new ephemeral port;"
look "A: its line goes out in a [P.], at once followed by A's [F.] (input over: half-close);"
look "   0.1 s later (--delay) the echo comes back in a [P.], then the server's [F.];"
look "B: its [F.] comes after 'two', before any echo: the server's echo of 'one' reaches a"
look "   closed socket, and B's kernel answers with [R]; the child's next write meets SIGPIPE."
explain "saved as $pcap"
show_log 02-server
