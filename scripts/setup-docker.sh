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
# since belong to another process, so a pid file counts as live only when its
# process really is the daemon it names.
clear_stale_pidfile() {  # clear_stale_pidfile FILE PROCESS-NAME
    local file=$1 name=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        return 0
    fi
    log "removing stale $file (pid ${pid:-?} is not a running $name)"
    rm -f "$file"
}
if ! pgrep -x dockerd >/dev/null 2>&1; then
    clear_stale_pidfile /var/run/docker.pid dockerd
    clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    # setsid + nohup: the daemon must outlive this script and its shell.
    setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        log "engine ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 0.5
done
log "ERROR: dockerd did not answer within 60 s; last lines of /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
