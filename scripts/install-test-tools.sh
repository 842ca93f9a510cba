#!/usr/bin/env bash
# The tools the whole test suite drives for real, from Debian packages: a
# browser (Chromium, with NSS tools for its certificate database), a packet
# capture and its decoder (tcpdump, tshark), a terminal (tmux) and an outside
# TLS scanner (testssl.sh), and the students' clients (Node, Java, Go, Firefox ESR). Installs only what is
# missing; .ci/run calls it.
# (Each test that needs one also installs it when run alone as root.)
set -euo pipefail
need=()
# The students' own clients from the handout zip: Node, Java, Go, and Firefox ESR (its own NSS profile).
for pair in chromium:chromium certutil:libnss3-tools pk12util:libnss3-tools tcpdump:tcpdump tshark:tshark \
            tmux:tmux testssl:testssl.sh node:nodejs java:default-jre-headless keytool:default-jre-headless \
            go:golang-go firefox-esr:firefox-esr; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "install-test-tools: ${need[*]} missing and this is not root" >&2; exit 1; }
    echo "install-test-tools: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
