#!/usr/bin/env bash
# Build an nginx image from Debian packages, for machines (and CI) that cannot
# reach a container registry. Usage: scripts/build-nginx-image.sh [NAME]
# (default NAME: lab-nginx:bookworm). The tag names the Debian suite:
#   lab-nginx:bookworm  Debian 12, nginx 1.22 with OpenSSL 3.0 (the oldest lab supports)
#   lab-nginx:testing   Debian testing, the newest Debian nginx and OpenSSL
#                       (debootstrap's `sid` script bootstraps it)
# (SUITE=... overrides.) Does nothing if the image exists; set FORCE=1 to
# rebuild. Needs root (debootstrap) and a running Docker engine.
set -euo pipefail

name=${1:-lab-nginx:bookworm}
suite=${SUITE:-${name##*:}}
log() { printf 'build-nginx-image: %s\n' "$*" >&2; }
case "$suite" in
    bookworm|trixie) script=$suite ;;
    testing|sid) script=sid ;;
    *) log "ERROR: no Debian suite in the tag of $name (bookworm, trixie, testing): set SUITE"; exit 2 ;;
esac

# The image also carries the openssl command: the lab's OCSP responder (lab up --revocation ocsp) is
# `openssl ocsp` in a container of the same image. An image built before lacks it (no label): built anew.
if [ -z "${FORCE:-}" ] && docker image inspect "$name" >/dev/null 2>&1; then
    if [ -n "$(docker image inspect -f '{{ with index .Config.Labels "io.mtls-lab.openssl-command" }}{{ . }}{{ end }}' "$name" 2>/dev/null)" ]; then
        log "image $name already present"
        exit 0
    fi
    log "image $name has no openssl command (built before lab's OCSP responder): building it anew"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/lab-nginx-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

log "debootstrap $suite with nginx-light and openssl into $root (about half a minute)"
if ! debootstrap --variant=minbase --include=nginx-light,openssl "$suite" "$root" http://deb.debian.org/debian \
        "/usr/share/debootstrap/scripts/$script" >"$root.log" 2>&1; then
    log "ERROR: debootstrap failed; last lines:"
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
fi
rm -f "$root.log"
# (The stop signal is set per container by lab: docker import on older engines
# refuses a STOPSIGNAL change.)
# Package caches are not needed at run time; they only make the image larger.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

log "importing as $name"
tar -C "$root" -c . | docker import \
    -c 'CMD ["nginx","-g","daemon off;"]' \
    -c "LABEL io.mtls-lab.nginx=$(chroot "$root" nginx -v 2>&1 | sed 's|.*/||')" \
    -c "LABEL io.mtls-lab.openssl=$(chroot "$root" nginx -V 2>&1 | grep -o 'OpenSSL [0-9][^ ]*' | tail -1 | cut -d' ' -f2)" \
    -c "LABEL io.mtls-lab.openssl-command=$(chroot "$root" openssl version | cut -d' ' -f2)" \
    -m "nginx-light and openssl from Debian $suite packages (scripts/build-nginx-image.sh)" \
    - "$name" >/dev/null
log "image $name ready ($(docker image inspect -f '{{.Size}}' "$name") bytes)"
