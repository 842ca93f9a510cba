#!/usr/bin/env python3
"""Side-by-side benchmark: the article's way by hand versus `lab`.

Prints a table of medians and spreads over several repetitions, then the
ratios the project aims at. Timings only: nothing here asserts. Needs a
running Docker engine, the nginx image (LAB_IMAGE, default lab-nginx:bookworm),
docker-compose, curl and openssl. Uses ports 18888/18889 on 127.0.0.1.

    .venv/bin/python bench/compare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB = str(BIN / "lab") if (BIN / "lab").exists() else "lab"
IMAGE = os.environ.get("LAB_IMAGE", "lab-nginx:bookworm")
TLS_PORT, MTLS_PORT = 18888, 18889
NAME = "labbench"
# LAB_TRACE's spans (lab/core/trace.py): the whole command, the start-up before it, and those inside another span.
COMMAND, STARTED = "the command, start to end", "start: Python, lab's imports, the command line"
NESTED = ("up: engine", "up: servers answer", "up: the network")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(*args, cwd=None, env=None):
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    return proc


def poll_tls(ca: Path, port: int, limit: float = 30.0) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + limit
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s, ctx.wrap_socket(s, server_hostname="localhost"):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def lab_args(d: Path) -> list[str]:
    return ["--dir", str(d), "--name", NAME]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    compose = shutil.which("docker-compose") or "docker-compose"
    rows: dict[str, list[float]] = {}
    traced: dict[str, dict[str, list[float]]] = {}     # cold/warm -> span -> seconds per run (LAB_TRACE)

    def add(key, value):
        rows.setdefault(key, []).append(value)

    work = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    try:
        for _ in range(runs):
            # --- by hand: the certificate script, docker-compose up -d, poll, docker-compose down.
            hand = work / "hand"
            shutil.rmtree(hand, ignore_errors=True)
            # The rendered files (configs, compose) are what the article has you write by hand.
            sh(LAB, "up", *lab_args(hand), "--image", IMAGE, "--tls-port", str(TLS_PORT), "--mtls-port", str(MTLS_PORT))
            sh(LAB, "down", *lab_args(hand))
            shutil.rmtree(hand / "certs")     # demo-certs/ stays: the compose file mounts the partner CA from it
            certs = hand / "certs"

            def by_hand_up():
                sh("bash", str(REPO / "scripts" / "gen-certs.sh"), "--out", str(certs), "--lab", NAME,
                   "--subject", f"/O=mtls-lab/OU={NAME}", "--days", "365", "--ca-days", "3650", "--server-ca-days", "366",
                   "--crl-days", "90",
                   "--san", "DNS:localhost", "--san", "IP:127.0.0.1", "--san", "IP:::1")
                sh(compose, "up", "-d", cwd=hand)
                poll_tls(certs / "server-ca.crt", TLS_PORT)
                poll_tls(certs / "server-ca.crt", MTLS_PORT)

            add("by hand: gen-certs + compose up + poll", timed(by_hand_up))

            add("by hand: compose down", timed(lambda: sh(compose, "down", cwd=hand)))

            # --- lab
            labdir = work / "lab"
            shutil.rmtree(labdir, ignore_errors=True)
            up = [LAB, "up", *lab_args(labdir), "--image", IMAGE, "--tls-port", str(TLS_PORT), "--mtls-port", str(MTLS_PORT)]
            for kind, label in (("cold", "lab up (cold: empty lab directory)"), ("warm", "lab up (warm: already running)")):
                trace = work / f"trace-{kind}.jsonl"
                trace.unlink(missing_ok=True)
                seconds = timed(lambda: sh(*up, env={"LAB_TRACE": str(trace)}))
                add(label, seconds)
                spans = [json.loads(line) for line in trace.read_text().splitlines()]
                for span in spans:
                    if span["span"] != COMMAND:
                        traced.setdefault(kind, {}).setdefault(span["span"], []).append(span["seconds"])
                by = {s["span"]: s["seconds"] for s in spans}
                command = by.pop(COMMAND, 0.0)
                stages = sum(v for k, v in by.items() if k.startswith("up:") and not k.startswith(NESTED))
                traced[kind].setdefault("in the command, no span: rich's console (its import), the lock", []).append(
                    command - stages)
                traced[kind].setdefault("after the command: Python's exit", []).append(
                    seconds - command - by.get(STARTED, 0.0))
            add("lab verify (13 scenarios)", timed(lambda: sh(LAB, "verify", *lab_args(labdir))))
            add("lab handshake (client-cert, s_client -msg)",
                timed(lambda: sh(LAB, "handshake", *lab_args(labdir))))
            add("lab reload (both servers: nginx -t, reload, old workers gone)",
                timed(lambda: sh(LAB, "reload", *lab_args(labdir))))
            # The fair baseline: the same nine scenarios checked by hand, as the nine
            # curl commands `lab curl SCENARIO` prints, one after the other.
            import shlex

            from lab.core import settings as lab_settings
            from lab.teach import verify as lab_verify

            s = lab_settings.resolve(labdir, {})
            commands = [shlex.split(lab_verify.curl_command(sc, labdir, s)) for sc in lab_verify.SCENARIOS]

            def nine_curls():
                for cmd in commands:   # some are meant to fail: their exit code is the lesson
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            add("by hand: the same 13 scenarios as 13 curls", timed(nine_curls))
            # The matrix without the command's start-up (Python, typer, rich).
            add("verify matrix in-process (13, no start-up)", timed(lambda: lab_verify.run(labdir, s)))
            add("lab down", timed(lambda: sh(LAB, "down", *lab_args(labdir))))
            add("lab --help", timed(lambda: sh(LAB, "--help")))
            # A room's access log: 100,000 lines read per student (lab room), in-process.
            from lab.teach import room as lab_room

            # The access log's format (templates/nginx-mtls.conf.j2), a request a student a few seconds apart.
            issuer = f"CN={NAME} Client CA,OU={NAME},O=mtls-lab"
            line = ('10.0.0.{i} [28/Nov/2026:09:{m:02d}:{s:02d} +0000] "GET /whoami HTTP/1.1" 200 98 tls=TLSv1.3 '
                    'cipher=TLS_AES_256_GCM_SHA384 client_verify=SUCCESS client_dn="CN=s{i},OU=labbench,O=mtls-lab" '
                    'client_serial={serial:X} client_issuer="' + issuer + '" agent="curl/8.11.1"')
            log = [line.format(i=i % 200, m=(i // 1000) % 60, s=(i // 20) % 60, serial=0x7000 + i % 200)
                   for i in range(100_000)]
            roster = lab_room.Roster([f"s{i}" for i in range(200)], issuer, {0x7000 + i: f"s{i}" for i in range(200)})
            add("lab room: 100,000 log lines, 200 students", timed(lambda: lab_room.read(log, roster)))
            add("python -c 'import typer'", timed(lambda: sh(sys.executable, "-c", "import typer")))
            # Floors: what any Python command built on the required stack pays before doing anything.
            add("floor: python + typer + Docker SDK + ping", timed(lambda: sh(
                sys.executable, "-c", "import typer, docker; docker.from_env().ping()")))
            add("floor: python + typer + ssl + http.client + rich", timed(lambda: sh(
                sys.executable, "-c", "import typer, ssl, http.client, rich.table")))

            # --- the engine alone: create and start two containers, no TLS, no waiting.
            def engine_only():
                import docker

                client = docker.from_env()
                made = [client.containers.create(IMAGE, labels={"io.mtls-lab.lab": NAME}) for _ in range(2)]
                for c in made:
                    c.start()
                engine_only.made = made

            add("engine alone: create + start 2 containers", timed(engine_only))
            for c in engine_only.made:
                c.remove(force=True)
    finally:
        subprocess.run([LAB, "down", "--name", NAME], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in rows.items()}
    width = max(map(len, rows))
    print(f"{'step':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}   ({runs} runs)")
    for k, v in rows.items():
        print(f"{k:<{width}}  {med[k]:8.3f}  {min(v):8.3f}  {max(v):8.3f}")
    print()
    ratios = [
        ("cold lab up / by hand up", med["lab up (cold: empty lab directory)"] / med["by hand: gen-certs + compose up + poll"], 0.8),
        ("warm lab up / by hand up", med["lab up (warm: already running)"] / med["by hand: gen-certs + compose up + poll"], 0.25),
        ("lab down / compose down", med["lab down"] / med["by hand: compose down"], 1.0),
        ("lab verify (13) / the same 13 curls", med["lab verify (13 scenarios)"]
         / med["by hand: the same 13 scenarios as 13 curls"], 2.0),
        ("  in-process matrix / 13 curls", med["verify matrix in-process (13, no start-up)"]
         / med["by hand: the same 13 scenarios as 13 curls"], 2.0),
        ("lab --help / import typer", med["lab --help"] / med["python -c 'import typer'"], 2.5),
        ("lab room over 100,000 lines, seconds", med["lab room: 100,000 log lines, 200 students"], 0.3),
        ("lab handshake, seconds (issue: within 1 s)", med["lab handshake (client-cert, s_client -msg)"], 1.0),
        ("lab reload, seconds (issue: within 1 s)", med["lab reload (both servers: nginx -t, reload, old workers gone)"],
         1.0),
    ]
    for kind, spans in traced.items():
        print(f"where a {kind} `lab up` spends its time (LAB_TRACE, medians; nested spans are indented):")
        for span, values in spans.items():
            nested = span.startswith(NESTED)
            print(f"  {'  ' if nested else ''}{span:<{66 if nested else 68}}  {statistics.median(values):6.3f}")
        print()
    print(f"engine alone, the floor under any cold `up`: {med['engine alone: create + start 2 containers']:.3f} s of "
          f"{med['lab up (cold: empty lab directory)']:.3f} s\n")
    floors = {
        "warm lab up / by hand up": med["floor: python + typer + Docker SDK + ping"]
        / med["by hand: gen-certs + compose up + poll"],
        "lab verify (13) / the same 13 curls": med["floor: python + typer + ssl + http.client + rich"]
        / med["by hand: the same 13 scenarios as 13 curls"],
    }
    print(f"{'ratio':<{width}}  {'value':>8}  {'target':>8}           {'floor (start-up alone)':>22}")
    for label, value, target in ratios:
        floor = f"{floors[label]:22.2f}" if label in floors else ""
        print(f"{label:<{width}}  {value:8.2f}  {'<= ' + str(target):>8}  {'met' if value <= target else 'NOT met':>7}  {floor}")


if __name__ == "__main__":
    main()
