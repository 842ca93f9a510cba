#!/usr/bin/env bash
# Install (if needed) and start (if needed) the Docker engine on a Debian host.
# Idempotent: it may find the package installed and no daemon running, both in
# place, or neither. A daemon killed when a session ends leaves
# /var/run/docker.pid behind, and the next dockerd refuses to start until it is
# removed, so a stale pid file (no live process) is deleted first.
set -euo pipefail

log() { printf 'setup-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
    log "engine already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "ERROR: dockerd is not installed and this is not root; install docker.io"; exit 1; }
    log "installing docker.io from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

pidfile=/var/run/docker.pid
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "dockerd (pid $pid) is running but not answering yet; waiting"
    else
        log "removing stale $pidfile (pid ${pid:-?} is gone)"
        rm -f "$pidfile"
    fi
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
