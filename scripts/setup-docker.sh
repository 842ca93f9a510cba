#!/usr/bin/env bash
# Install (if needed) and start (if needed) the Docker engine on a Debian host.
# Idempotent: it may find the package installed and no daemon running, both in
# place, or neither. A daemon killed when a session ends leaves
# /var/run/docker.pid behind, and the next dockerd refuses to start until it is
# removed, so a stale pid file (no live process) is deleted first.
set -euo pipefail

log() { printf 'setup-docker: %s\n' "$*" >&2; }

# What lab and its tests use from the host: the engine, openssl and curl (the
# lab's own tools and the curl commands it prints), and the legacy
# docker-compose that Debian 12 ships (to run the rendered compose file by hand).
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "ERROR: ${missing[*]} missing and this is not root: run as root or install them"; exit 1; }
    log "installing ${missing[*]} from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    log "engine already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

# A daemon killed when a session ends leaves its pid files behind, and the next
# dockerd refuses to start while /var/run/docker.pid exists. The pid in it may
# since belong to another process, or to a killed daemon not yet reaped (a
# zombie), so a pid file counts as live only when its process is the daemon it
# names and is not a zombie.
live() {  # live FILE PROCESS-NAME
    local pid
    pid=$(cat "$1" 2>/dev/null || true)
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
if ! live /var/run/docker.pid dockerd; then
    for pair in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
        file=${pair%%:*} name=${pair##*:}
        if [ -f "$file" ] && ! live "$file" "$name"; then
            log "removing stale $file (its pid is not a running $name)"
            rm -f "$file"
        fi
    done
    log "starting dockerd (log: /var/log/dockerd.log)"
    # setsid + nohup: the daemon must outlive this script and its shell.
    setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    started=$!
else
    log "dockerd is running but not answering yet; waiting"
    started=""
fi

for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        log "engine ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    if [ -n "$started" ] && ! kill -0 "$started" 2>/dev/null; then
        break   # the daemon we started has exited: no use waiting
    fi
    sleep 0.5
done
log "ERROR: dockerd did not answer (or exited); last lines of /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
