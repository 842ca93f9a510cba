#!/usr/bin/env bash
# Build an nginx image from Debian packages, for machines (and CI) that cannot
# reach a container registry. Usage: scripts/build-nginx-image.sh [NAME]
# (default NAME: lab-nginx:bookworm). Does nothing if the image exists; set
# FORCE=1 to rebuild. Needs root (debootstrap) and a running Docker engine.
set -euo pipefail

name=${1:-lab-nginx:bookworm}
log() { printf 'build-nginx-image: %s\n' "$*" >&2; }

if [ -z "${FORCE:-}" ] && docker image inspect "$name" >/dev/null 2>&1; then
    log "image $name already present"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/lab-nginx-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

log "debootstrap bookworm with nginx-light into $root (about half a minute)"
if ! debootstrap --variant=minbase --include=nginx-light bookworm "$root" >"$root.log" 2>&1; then
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
    -m "nginx-light from Debian bookworm packages (scripts/build-nginx-image.sh)" \
    - "$name" >/dev/null
log "image $name ready ($(docker image inspect -f '{{.Size}}' "$name") bytes)"
