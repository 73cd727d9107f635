#!/usr/bin/env bash
# Your port in the lab room: 8000 plus the last number of your machine's
# IPv4 address, the one it uses to reach the network (the source address
# of its default route, as `ip -4 route get` names it). For 163.117.144.123
# that is 123, and the port is 8123. Groups sharing the room's network
# then never pick the same port.
set -euo pipefail
case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LAB_LANG=es ;; *) LAB_LANG=en ;; esac
t() { if [ "$LAB_LANG" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }

addr=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true)
why=$(t "the source address of this machine's default route" "la dirección de origen de la ruta por omisión de esta máquina")
if [ -z "$addr" ]; then
    # No default route: the first address that is not loopback.
    addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }' || true)
    why=$(t "the first address of this machine other than 127.0.0.1 (it has no default route)" \
        "la primera dirección de esta máquina que no es 127.0.0.1 (no tiene ruta por omisión)")
fi
if [ -z "$addr" ]; then
    # Alone, with no network: no group to collide with.
    echo 8000
    t "   no network address here: any free port from 1024 up will do" \
        "   aquí no hay dirección de red: vale cualquier puerto libre desde el 1024" >&2
    echo >&2
    exit 0
fi
last=${addr##*.}
echo "$((8000 + last))"
printf '   8000 + %s: %s, %s\n' "$last" "$addr" "$why" >&2
