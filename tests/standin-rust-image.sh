#!/usr/bin/env bash
# A stand-in for the official Rust image that .devcontainer/lab.Dockerfile
# starts FROM, made on a machine that reaches no image registry (this lab's
# CI), under the official image's own name, so that the lab image builds
# here exactly as it builds on a student's laptop.
#
#   tests/standin-rust-image.sh rust:1.95-slim-bookworm
#
# What the official slim image holds, made from what this machine has:
# Debian bookworm from Debian's mirror (mmdebstrap, as debian:bookworm-slim
# is made: no manuals, documentation or translations), the packages the Rust image adds
# (gcc, libc6-dev, ca-certificates), and this machine's own Rust toolchain,
# which must be the version the name says, laid out as rustup lays it out
# there: RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, both
# writable by every user. Of the toolchain, only the components of rustup's
# minimal profile (rustc, cargo, rust-std), as in the official image, and
# rustfmt and clippy, which lab.Dockerfile adds with `rustup component
# add`: here that finds them installed and needs no network.
#
# Needs root, mmdebstrap, Debian's mirror and a running Docker. Exit status
# 0 when the image is made, 1 otherwise (with one line saying why).
set -euo pipefail

fail() { echo "standin-rust-image: $1" >&2; exit 1; }

[ $# = 1 ] || fail "usage: tests/standin-rust-image.sh IMAGE (e.g. rust:1.95-slim-bookworm)"
image=$1
# rust:1.95-slim-bookworm: version 1.95, Debian bookworm.
[[ $image =~ ^rust:([0-9]+\.[0-9]+)(\.[0-9]+)?-slim-([a-z]+)$ ]] \
    || fail "$image is not a name of the form rust:X.Y-slim-SUITE"
version=${BASH_REMATCH[1]}
suite=${BASH_REMATCH[3]}
command -v mmdebstrap >/dev/null 2>&1 || fail "mmdebstrap is not installed (apt-get install mmdebstrap)"
[ "$(id -u)" = 0 ] || fail "mmdebstrap must run as root here"

release=$(rustc -vV | sed -n 's/^release: //p')
host=$(rustc -vV | sed -n 's/^host: //p')
case "$release" in
    "$version" | "$version".*) ;;
    *) fail "this machine's rustc is $release, not $version: it cannot stand in for $image" ;;
esac
sysroot=$(rustc --print sysroot)
rustup=$(readlink -f "$(command -v rustup)") || fail "rustup is not installed"
toolchain=$release-$host

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
rustup_home=$staging/usr/local/rustup
cargo_home=$staging/usr/local/cargo
into=$rustup_home/toolchains/$toolchain
mkdir -p "$into/lib/rustlib" "$cargo_home/bin"

# Each component's files, as its rustup manifest lists them.
components=(rustc cargo rust-std rustfmt-preview clippy-preview)
for component in "${components[@]}"; do
    manifest=$sysroot/lib/rustlib/manifest-$component-$host
    [ -f "$manifest" ] || fail "the toolchain has no $component (rustup component add ${component%-preview})"
    cp "$manifest" "$into/lib/rustlib/"
    sed -n 's/^\(file\|dir\)://p' "$manifest" | (cd "$sysroot" && xargs cp -a --parents -t "$into")
    printf '%s-%s\n' "$component" "$host" >>"$into/lib/rustlib/components"
done
for file in multirust-channel-manifest.toml rust-installer-version; do
    cp "$sysroot/lib/rustlib/$file" "$into/lib/rustlib/"
done
{
    echo 'config_version = "1"'
    for component in "${components[@]}"; do
        printf '\n[[components]]\npkg = "%s"\ntarget = "%s"\nis_extension = false\n' "$component" "$host"
    done
} >"$into/lib/rustlib/multirust-config.toml"
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$toolchain" >"$rustup_home/settings.toml"
# rustup, and its proxies: cargo, rustc... are rustup under another name.
cp "$rustup" "$cargo_home/bin/rustup"
for proxy in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt; do
    ln -s rustup "$cargo_home/bin/$proxy"
done

# debian:bookworm-slim's own dpkg settings: no manuals, documentation or
# translations.
nodocs=()
for path in doc man info groff lintian linda locale; do
    nodocs+=("--dpkgopt=path-exclude=/usr/share/$path/*")
done
nodocs+=("--dpkgopt=path-include=/usr/share/doc/*/copyright" "--dpkgopt=path-include=/usr/share/locale/locale.alias")

# Into a file first: a failed mmdebstrap must leave no image behind.
rootfs=$staging/rootfs.tar
mirror=http://deb.debian.org/debian
# shellcheck disable=SC2016 # $1, the new system's folder, is the hooks' own
mmdebstrap --quiet --variant=minbase --include=ca-certificates,gcc,libc6-dev "${nodocs[@]}" \
    --customize-hook="cp -a '$staging/usr/local/.' \"\$1/usr/local/\"" \
    --customize-hook='chmod -R a+w "$1/usr/local/rustup" "$1/usr/local/cargo"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
    "$suite" "$rootfs" \
    "deb $mirror $suite main" "deb $mirror $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main" \
    || fail "mmdebstrap could not make Debian $suite"
docker import \
    --message "stand-in for $image: Debian $suite (mmdebstrap) and this machine's Rust $release" \
    --change "ENV RUSTUP_HOME=/usr/local/rustup" \
    --change "ENV CARGO_HOME=/usr/local/cargo" \
    --change "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV RUST_VERSION=$release" \
    --change 'CMD ["bash"]' \
    "$rootfs" "$image" >/dev/null
echo "standin-rust-image: made $image (Debian $suite, Rust $release)"
