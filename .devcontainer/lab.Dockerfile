# The lab's container: every tool the lab uses, for a student whose laptop
# does not run Linux (macOS, Windows), on amd64 and arm64 alike (the base
# image is published for both; nothing here depends on the architecture).
# The repository is not copied in: ./lab-shell and VS Code mount the
# student's folder, so what they write stays on their laptop.
#
#   ./lab-shell                      builds this image (tcpechod-lab) if it is
#                                    missing or older than this file, and opens
#                                    a shell in it as the user student
#   VS Code: "Reopen in Container"   the same, from .devcontainer/devcontainer.json
#
# Not to be confused with server.Dockerfile: that one is the server alone,
# FROM scratch, for the optional containers exercise (make docker-image).
#
# The Rust version is the one the lab is tested with (tests/lab_container.rs
# checks that it is this machine's); the student's crates come from
# crates.io at the first make, as on any machine.
#
# Each laptop builds the image for its own architecture. To publish one
# image for both instead: docker buildx build --platform
# linux/amd64,linux/arm64 -f .devcontainer/lab.Dockerfile -t
# REGISTRY/tcpechod-lab --push .devcontainer (buildx, with QEMU or a
# builder of each architecture, and a registry to push to).
FROM rust:1.95-slim-bookworm

# The base image leaves manual pages out; the lab cites them (man 2
# waitpid, man 7 signal-safety), so they come back before anything is
# installed.
RUN find /etc/dpkg/dpkg.cfg.d -type f -exec sed -i -e '\|/usr/share/man|d' -e '\|/usr/share/groff|d' {} +

# What the statement and the labs/ scripts run: ps, ss, ip, netstat,
# tcpdump, unshare and nsenter, strace, git; socat for the benchmark's
# comparison; setcap (libcap2-bin), sudo and tini, used below; the
# statement's languages (locales).
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        make procps iproute2 net-tools tcpdump util-linux netbase strace git socat \
        libcap2-bin sudo tini locales less man-db manpages manpages-dev \
    && rm -rf /var/lib/apt/lists/* \
    && sed -i -e 's/^# *\(en_US.UTF-8\)/\1/' -e 's/^# *\(es_ES.UTF-8\)/\1/' /etc/locale.gen \
    && locale-gen

# tcpdump for a normal user: the capability to open a packet socket
# (CAP_NET_RAW) comes with the program itself, so the student captures on
# the container's loopback without root. The container must be allowed
# that capability (Docker allows it by default; Podman needs --cap-add).
RUN setcap cap_net_raw=ep "$(command -v tcpdump)"

# rustfmt and clippy, beside the compiler, as on a lab machine.
RUN rustup component add rustfmt clippy

# The student: a normal user, as in the lab room. ./lab-shell gives it the
# uid and gid of the folder's owner on the laptop (lab-entrypoint.sh).
# sudo, without a password, for the optional parts that need root
# (labs/09-pid1.sh, /proc/PID/stack): the container is the student's own.
RUN useradd --create-home --shell /bin/bash --uid 1000 --user-group student \
    && echo 'student ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/student \
    && chmod 0440 /etc/sudoers.d/student

COPY lab-entrypoint.sh /usr/local/sbin/lab-entrypoint

# LANG: UTF-8 unless the student's terminal says otherwise (./lab-shell
# passes its LANG on). TCPECHOD_LAB: ./lab-shell, run inside, says where it is.
ENV LANG=C.UTF-8 \
    TCPECHOD_LAB=1
WORKDIR /lab
# tini is PID 1: it reaps the orphans that the exercises leave (exercise
# 7), as init does on a lab machine, and passes docker stop's SIGTERM on.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/lab-entrypoint"]
