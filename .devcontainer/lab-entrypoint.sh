#!/bin/sh
# The lab container's entrypoint (lab.Dockerfile), started as root under
# tini.
#
#   lab-entrypoint               the container stays up, as a lab machine
#                                does, until it is stopped; shells join it
#                                (./lab-shell, VS Code)
#   lab-entrypoint COMMAND...    runs COMMAND as the user student
#
# First, LAB_UID and LAB_GID (./lab-shell sets them to the owner of the
# student's folder on the laptop) become the uid and gid of student, so that
# what the student makes in the mounted folder belongs to them on a Linux
# laptop too. (Docker Desktop on macOS and Windows maps ownership itself;
# VS Code matches the uid itself, and sets neither.) Then /run/lab-ready
# tells ./lab-shell that shells may join.
#
# Staying up as root (sleep), not as student, keeps the container's own
# process out of the student's `ps x`.
set -eu

number() { case "$1" in '' | *[!0-9]*) return 1 ;; esac }

if [ "$(id -u)" = 0 ]; then
    changed=false
    if number "${LAB_GID:-}" && [ "$LAB_GID" != 0 ] && [ "$LAB_GID" != "$(id -g student)" ]; then
        # -o: the gid may be a group of the image's already (20, macOS's
        # staff, is Debian's dialout).
        groupmod -o -g "$LAB_GID" student
        changed=true
    fi
    if number "${LAB_UID:-}" && [ "$LAB_UID" != 0 ] && [ "$LAB_UID" != "$(id -u student)" ]; then
        usermod -o -u "$LAB_UID" student
        changed=true
    fi
    if $changed; then
        chown -R student:student /home/student
    fi
    touch /run/lab-ready
    if [ $# = 0 ]; then
        exec sleep infinity
    fi
    exec setpriv --reuid=student --regid=student --init-groups \
        env HOME=/home/student USER=student LOGNAME=student "$@"
fi
if [ $# = 0 ]; then
    exec sleep infinity
fi
exec "$@"
