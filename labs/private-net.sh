#!/usr/bin/env bash
# A private network of your own, without root: a network namespace with
# nothing but its own loopback (lo, 127.0.0.1), in which you have what
# root has on the machine's: tcpdump can capture there. For exercise 2 on
# a lab machine where you are not root.
#
#   labs/private-net.sh                  a shell in your private network. In
#                                        another terminal, the same command
#                                        joins the SAME network: a server, its
#                                        clients and tcpdump, each in its own
#                                        terminal, see each other there.
#   labs/private-net.sh COMMAND...       runs COMMAND in it (in your open
#                                        network, else in one of its own)
#   labs/private-net.sh --new COMMAND... runs COMMAND in a network of its own
#   labs/private-net.sh --check          exit status 0 if this system lets
#                                        you open one; else says why, status 1
#
# How: `unshare --user --map-current-user --keep-caps --net` makes a user
# namespace, in which you keep your uid and have every capability over
# what it owns, and a network namespace that it owns; `ip link set lo up`
# brings its loopback up. Not --map-root-user: tcpdump started as root
# gives up root for its own user (Debian, Ubuntu), which takes setgroups,
# and an unprivileged user namespace refuses setgroups, so tcpdump would
# fail ("Couldn't change to 'tcpdump'"). Started as yourself, with the
# capabilities, it keeps them and captures.
#
# The first shell leaves its PID in $XDG_RUNTIME_DIR/tcpechod-private-net/pid
# (or /tmp/tcpechod-private-net-UID/pid); the next ones enter its
# namespaces with nsenter. The file goes when the first shell exits; the
# network lives on while a terminal that joined it is still in it. nsenter
# passes the capabilities on where it has --keep-caps (util-linux 2.40
# and later); with an older one, a joined terminal runs servers and
# clients, and tcpdump runs in the first.
#
# Where the kernel refuses user namespaces to users (Ubuntu 24.04's
# kernel.apparmor_restrict_unprivileged_userns = 1,
# kernel.unprivileged_userns_clone = 0, user.max_user_namespaces = 0), it
# says so and exits with status 1. LAB_NO_USERNS=1 makes it act as if they
# were refused (the tests use it to see what a student on such a system
# sees). Exit status: COMMAND's own; 1 if no private network can be
# opened; 2 for bad usage.
set -euo pipefail
case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in es*) LAB_LANG=es ;; *) LAB_LANG=en ;; esac
t() { if [ "$LAB_LANG" = es ]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }
PATH=$PATH:/usr/sbin:/sbin

UNSHARE=(unshare --user --map-current-user --keep-caps --net)

# refused: says why this system refuses a private network to this user,
# and succeeds; fails (saying nothing) if it does not refuse.
refused() {
    local error setting
    if [ "${LAB_NO_USERNS:-}" = 1 ]; then
        t "LAB_NO_USERNS=1 is set, as if the kernel refused user namespaces" \
            "LAB_NO_USERNS=1 está puesto, como si el núcleo rechazara los espacios de nombres de usuario"
        return 0
    fi
    if error=$("${UNSHARE[@]}" -- ip link set lo up 2>&1); then
        return 1
    fi
    for setting in kernel/apparmor_restrict_unprivileged_userns=1 kernel/unprivileged_userns_clone=0 \
        user/max_user_namespaces=0; do
        if [ "$(cat "/proc/sys/${setting%=*}" 2>/dev/null)" = "${setting#*=}" ]; then
            setting=$(tr / . <<<"$setting")
            t "the kernel does not let users make user namespaces here (${setting/=/ = })" \
                "aquí el núcleo no deja a los usuarios crear espacios de nombres de usuario (${setting/=/ = })"
            return 0
        fi
    done
    printf '%s' "$(head -n 1 <<<"$error")"
}

# The folder of this user's state, private to them.
state_dir() {
    local dir
    if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ] && [ -O "$XDG_RUNTIME_DIR" ]; then
        dir=$XDG_RUNTIME_DIR/tcpechod-private-net
    else
        dir=/tmp/tcpechod-private-net-$(id -u)
    fi
    mkdir -p -m 700 "$dir"
    # Not a folder that someone else made for us to use.
    if [ ! -O "$dir" ] || [ -n "$(find "$dir" -maxdepth 0 -perm /022)" ]; then
        echo "private-net: $dir $(t "is not yours alone" "no es solo tuyo")" >&2
        exit 1
    fi
    printf '%s' "$dir"
}

# open_network: the PID of the first shell of your open private network,
# if there is one (its PID file names a live process of yours in another
# network namespace); nothing otherwise.
open_network() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] && [ -O "/proc/$pid" ] || return 0
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] || return 0
    printf '%s' "$pid"
}

# The shells' start-up file: yours, then a prompt that says where you are.
write_rcfile() {
    cat >"$RCFILE" <<EOF
if [ -f ~/.bashrc ]; then . ~/.bashrc; fi
PS1="($(t "private net" "red privada")) \${PS1:-\\\$ }"
EOF
}

usage() {
    t "usage: labs/private-net.sh [--new] [COMMAND...] | --check" "uso: labs/private-net.sh [--new] [ORDEN...] | --check" >&2
    echo >&2
    exit 2
}

new=false
case "${1:-}" in
    --check)
        [ $# = 1 ] || usage
        if why=$(refused); then
            echo "private-net: $why" >&2
            exit 1
        fi
        exit 0
        ;;
    --new)
        shift
        [ $# -gt 0 ] || usage
        new=true
        ;;
    --help | -h) usage ;;
    -*) usage ;;
esac

if [ -n "${LAB_PRIVATE_NET:-}" ]; then
    # Already inside one: the command runs here.
    if [ $# = 0 ]; then
        t "you are already in your private network" "ya estás en tu red privada" >&2
        echo >&2
        exit 0
    fi
    exec "$@"
fi

if why=$(refused); then
    {
        echo "private-net: $(t "this system does not let you open a private network" "este sistema no te deja abrir una red privada"): $why."
        t "Capturing on the machine's lo needs root here (sudo tcpdump ...); labs/02-tcpdump.sh shows a recorded capture instead." \
            "Capturar en el lo de la máquina necesita aquí root (sudo tcpdump ...); labs/02-tcpdump.sh muestra en su lugar una captura grabada."
        echo
    } >&2
    exit 1
fi
export LAB_PRIVATE_NET=1

if $new; then
    exec "${UNSHARE[@]}" -- sh -c 'ip link set lo up && exec "$@"' private-net "$@"
fi

STATE=$(state_dir)
PIDFILE=$STATE/pid
RCFILE=$STATE/bashrc
NSENTER=(nsenter --preserve-credentials --user --net)
keep_caps=false
if nsenter --help 2>&1 | grep -q -- --keep-caps; then
    NSENTER+=(--keep-caps)
    keep_caps=true
fi

# One terminal at a time decides whether it opens the network or joins it.
exec {lock}>"$STATE/lock"
flock "$lock"
first=$(open_network)

if [ -n "$first" ]; then
    exec {lock}>&-
    if [ $# -gt 0 ]; then
        exec "${NSENTER[@]}" --target "$first" -- "$@"
    fi
    write_rcfile
    {
        echo "== $(t "You joined your private network (that of the shell $first): only lo, 127.0.0.1, yours." \
            "Has entrado en tu red privada (la del shell $first): solo lo, 127.0.0.1, tuyo.")"
        if ! $keep_caps; then
            echo "   $(t "This nsenter cannot pass capabilities on: run tcpdump in the first terminal, the one that opened the network; servers and clients run in any." \
                "Este nsenter no puede pasar las capacidades: ejecuta tcpdump en el primer terminal, el que abrió la red; servidores y clientes funcionan en cualquiera.")"
        fi
        echo "   $(t "exit (or Ctrl-D) leaves it." "exit (o Ctrl-D) sale de ella.")"
    } >&2
    exec "${NSENTER[@]}" --target "$first" -- bash --rcfile "$RCFILE" -i
fi

if [ $# -gt 0 ]; then
    exec {lock}>&-
    exec "${UNSHARE[@]}" -- sh -c 'ip link set lo up && exec "$@"' private-net "$@"
fi

write_rcfile
{
    echo "== $(t "Your private network: only lo, 127.0.0.1, yours. You are $(id -un 2>/dev/null) in it, with what root has (tcpdump, ip)." \
        "Tu red privada: solo lo, 127.0.0.1, tuyo. Dentro eres $(id -un 2>/dev/null), con lo que tiene root (tcpdump, ip).")"
    echo "   $(t "In another terminal, labs/private-net.sh joins it. exit (or Ctrl-D) closes it." \
        "En otro terminal, labs/private-net.sh entra en ella. exit (o Ctrl-D) la cierra.")"
} >&2
# The shell writes its PID (the network's, for the next terminals), lets
# go of the lock, and becomes the interactive shell.
look=$(t ">> LOOK: only lo, 127.0.0.1: no other machine reaches this network, and what you capture in it is yours alone." \
    ">> FÍJATE: solo lo, 127.0.0.1: ninguna otra máquina llega a esta red, y lo que captures en ella es solo tuyo.")
status=0
"${UNSHARE[@]}" -- bash -c 'ip link set lo up && echo "\$ ip -brief addr" && ip -brief addr && echo "$4" >&2 && echo $$ > "$1" && flock -u "$2" && eval "exec $2>&-" && exec bash --rcfile "$3" -i' \
    private-net "$PIDFILE" "$lock" "$RCFILE" "$look" || status=$?
exec {lock}>&-
# Gone: its PID no longer names a network of ours.
if [ -z "$(open_network)" ]; then rm -f "$PIDFILE"; fi
echo "== $(t "Private network closed (the terminals that joined it keep it until they exit)." \
    "Red privada cerrada (los terminales que entraron en ella la mantienen hasta que salen).")" >&2
exit "$status"
