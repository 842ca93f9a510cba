#!/usr/bin/env bash
# From a fresh clone to a running, verified lab:
#   1. the Docker engine (installed from Debian packages and started if needed),
#   2. an nginx image built from Debian packages (no registry needed),
#   3. lab itself, installed into ./.venv with its test dependencies,
#   4. `lab up` and `lab verify`.
# Idempotent: run it again and it only does what is missing.
# Set LAB_IMAGE to use another image (e.g. nginx:1.27.3 where a registry is reachable).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-docker.sh
if [ -z "${LAB_IMAGE:-}" ]; then
    bash scripts/build-nginx-image.sh lab-nginx:bookworm
    export LAB_IMAGE=lab-nginx:bookworm
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
echo "quickstart: installing lab into .venv" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check '.[test]'

.venv/bin/lab up
.venv/bin/lab verify
cat >&2 <<EOT

quickstart: done. The lab is running; lab is in .venv:
  source .venv/bin/activate      # then: lab verify, lab down
  .venv/bin/python -m pytest     # the whole test suite
EOT
