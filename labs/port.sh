#!/usr/bin/env bash
# Your port in the lab room, written 8xxx in the statement:
#
#     PORT = 8000 + LAST + 256 * SLOT
#
# LAST is the last number of your machine's IPv4 address, the one it uses
# to reach the network (the source address of its default route, as
# `ip -4 route get` names it): for 163.117.144.123 it is 123. The machines
# of one room share one network (a /24), so each has a LAST of its own.
# SLOT is your user's: (UID - 1000) mod 96, so that users logged in on one
# machine at the same time (up to 96 consecutive UIDs) get different ports.
# The first user of a Linux installation, UID 1000, has SLOT 0 and the
# familiar 8000 + LAST (8123); root too; under sudo, the port is that of
# the user who ran sudo. Every such port is below 32768, where Linux starts
# picking the ephemeral ports of clients, so no client takes it by chance.
#
# Output: the port alone on stdout; the explanation on stderr. If the port
# is taken (a socket listens on it), it says by whom when it can tell (ss
# shows the process only for your own; for another user's, the user), and
# then prints on stdout the next free port of the same form (the next
# SLOT, same LAST, so still apart from the other machines): the port to
# use now. A port that your own server holds stays yours.
#
# Exit status 0, also when the port is taken.
set -euo pipefail
case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LAB_LANG=es ;; *) LAB_LANG=en ;; esac
t() { if [ "$LAB_LANG" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }
# ip and ss live in /usr/sbin or /sbin on some systems, outside a user's PATH.
PATH=$PATH:/usr/sbin:/sbin

addr=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true)
why=$(t "the source address of this machine's default route" "la dirección de origen de la ruta por omisión de esta máquina")
if [ -z "$addr" ]; then
    # No default route: the first address that is not loopback.
    addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }' || true)
    why=$(t "the first address of this machine other than 127.0.0.1, as it has no default route" \
        "la primera dirección de esta máquina que no es 127.0.0.1, ya que no tiene ruta por omisión")
fi
if [ -n "$addr" ]; then
    last=${addr##*.}
    from_last=$(t "$last is the last number of $addr ($why)" "$last es el último número de $addr ($why)")
else
    # Alone, with no network: no other machine to keep apart from.
    last=0
    from_last=$(t "0 in place of the last number of an address: this machine has none" \
        "0 en lugar del último número de una dirección: esta máquina no tiene ninguna")
fi

uid=$(id -u)
name=$(id -un 2>/dev/null) || name=$uid
if [ "$uid" = 0 ] && [[ ${SUDO_UID:-} =~ ^[1-9][0-9]*$ ]]; then
    # sudo labs/port.sh: the port of the student who ran sudo.
    uid=$SUDO_UID
    name=$(t "${SUDO_USER:-?}, who ran sudo" "${SUDO_USER:-?}, que ejecutó sudo")
fi
if [ "$uid" = 0 ]; then
    slot=0
    from_slot=$(t "0 is root's slot" "0 es la posición de root")
else
    slot=$(((uid - 1000) % 96))
    if [ "$slot" -lt 0 ]; then slot=$((slot + 96)); fi
    from_slot=$(t "$slot is your user's slot, (uid $uid - 1000) mod 96 ($name)" \
        "$slot es la posición de tu usuario, (uid $uid - 1000) mod 96 ($name)")
fi
port_of() { echo $((8000 + last + 256 * $1)); }
port=$(port_of "$slot")

# listening PORT: the line of the socket that listens on PORT, if any.
listening() {
    ss -Htlnep "( sport = :$1 )" 2>/dev/null | head -n 1
}
# holder LINE: who holds the socket of an `ss -Htlnep` line: the process
# when ss shows it (only for your own processes), else the user, by the
# uid: field (absent for root's sockets).
holder() {
    local process owner name
    process=$(sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (PID \2)/p' <<<"$1")
    owner=$(sed -n 's/.* uid:\([0-9]*\).*/\1/p' <<<"$1")
    owner=${owner:-0}
    name=$(getent passwd "$owner" | cut -d: -f1 || true)
    if [ -n "$process" ]; then
        printf '%s' "$process"
    else
        printf '%s %s (uid %s)' "$(t "a process of user" "un proceso del usuario")" "${name:-?}" "$owner"
    fi
}

printf '   8000 + %s + 256 * %s = %s: %s; %s\n' "$last" "$slot" "$port" "$from_last" "$from_slot" >&2

taken=$(listening "$port")
if [ -z "$taken" ]; then
    echo "$port"
    exit 0
fi
by=$(holder "$taken")
owner=$(sed -n 's/.* uid:\([0-9]*\).*/\1/p' <<<"$taken")
if [ "${owner:-0}" = "$uid" ]; then
    pid=$(sed -n 's/.*users:(([^)]*pid=\([0-9]*\).*/\1/p' <<<"$taken")
    echo "$port"
    t "   WARNING: port $port is taken by $by, a process of yours: probably your server, still running. Stop it (kill ${pid:-PID}) before you start another one, or use it." \
        "   AVISO: el puerto $port lo tiene $by, un proceso tuyo: seguramente tu servidor, aún en marcha. Páralo (kill ${pid:-PID}) antes de arrancar otro, o úsalo." >&2
    echo >&2
    exit 0
fi
for step in $(seq 1 95); do
    other=$(port_of $(((slot + step) % 96)))
    if [ -z "$(listening "$other")" ]; then
        echo "$other"
        t "   WARNING: port $port is taken, by $by. Use $other instead: the next free port of the same form (8000 + $last + 256 * $(((slot + step) % 96)))." \
            "   AVISO: el puerto $port está ocupado, por $by. Usa el $other: el siguiente puerto libre de la misma forma (8000 + $last + 256 * $(((slot + step) % 96)))." >&2
        echo >&2
        exit 0
    fi
done
echo "$port"
t "   WARNING: port $port is taken, by $by, and so is every other port of the same form: use any free port from 1024 up." \
    "   AVISO: el puerto $port está ocupado, por $by, y también todos los demás de la misma forma: usa cualquier puerto libre desde el 1024." >&2
echo >&2
