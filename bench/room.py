#!/usr/bin/env python3
"""The scale of a room: 200 students issued and handed out, next to the same work done by hand
with openssl (key, request, signature by the CA database, PKCS#12 bundle, one student after the
other). Prints figures; asserts nothing. Needs openssl; no Docker.

    .venv/bin/python bench/room.py [--students 200]

--load: the room under load, against a running lab on loopback (needs Docker and the image, LAB_IMAGE,
default lab-nginx:bookworm): every student, with their own certificate, makes --requests requests, each
over a new TLS handshake, --concurrency at a time; then some are revoked and try once more. Prints the
answers (every valid one must be 200, every revoked one 400; any other answer or error is counted), the
p50 and p99 of handshake + request, nginx's memory before and after, and what `lab room` reports from the
access log that made. Bounded: each request 10 s at most.

    .venv/bin/python bench/room.py --load [--students 200] [--requests 20] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LAB = str(BIN / "lab") if (BIN / "lab").exists() else "lab"


def sh(*args, cwd=None, env=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(map(str, args))}\n{proc.stdout}{proc.stderr}")
    return proc


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


STARTED = "start: Python, lab's imports, the command line"
_AT_ONCE_NOTE = "its threads, so it can exceed the wall time of its '…, all' line"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(n: int, per: int, at_once: int, revoked: int = 5) -> None:
    import http.client
    import json
    import os
    import ssl
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    import docker

    image = os.environ.get("LAB_IMAGE", "lab-nginx:bookworm")
    work = Path(tempfile.mkdtemp(prefix="lab-room-load-"))
    lab = ["--dir", str(work / "lab"), "--name", "roomload"]
    mtls = _free_port()
    try:
        sh(LAB, "up", *lab, "--image", image, "--tls-port", _free_port(), "--mtls-port", mtls)
        roster = work / "class.txt"
        roster.write_text("\n".join(f"student{i:03d}" for i in range(n)) + "\n")
        sh(LAB, "client", "add", "--from-file", roster, *lab)
        clients = work / "lab" / "clients"
        ca = str(work / "lab" / "certs" / "server-ca.crt")
        contexts = {}
        for i in range(n):
            name = f"student{i:03d}"
            ctx = ssl.create_default_context(cafile=ca)
            ctx.load_cert_chain(str(clients / name / f"{name}.crt"), str(clients / name / f"{name}.key"))
            contexts[name] = ctx
        container = docker.from_env().containers.get("roomload-mtls")

        def memory() -> float:
            return container.stats(stream=False)["memory_stats"].get("usage", 0) / 2**20

        def one(name: str) -> tuple[int | None, float, str]:
            t = time.perf_counter()
            conn = http.client.HTTPSConnection("localhost", mtls, context=contexts[name], timeout=10)
            try:
                conn.request("GET", "/hello-world.txt", headers={"Connection": "close"})
                status = conn.getresponse().status
                return status, time.perf_counter() - t, ""
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                return None, time.perf_counter() - t, e.__class__.__name__
            finally:
                conn.close()

        before = memory()
        names = [f"student{i:03d}" for i in range(n)] * per
        started = time.perf_counter()
        with ThreadPoolExecutor(at_once) as pool:
            answers = list(pool.map(one, names))
        wall = time.perf_counter() - started
        after = memory()
        gone = [f"student{i:03d}" for i in range(revoked)]
        for name in gone:
            sh(LAB, "client", "revoke", name, *lab)
        with ThreadPoolExecutor(at_once) as pool:
            refused = list(pool.map(one, gone))
        room = json.loads(sh(LAB, "room", "--json", *lab).stdout)
    finally:
        subprocess.run([LAB, "down", *lab, "--purge"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    latencies = sorted(a[1] for a in answers)
    wrong = sum(1 for a in answers if a[0] != 200) + sum(1 for a in refused if a[0] != 400)
    errors = sum(1 for a in [*answers, *refused] if a[0] is None)
    print(f"{'the room under load':<52} {'value':>10}")
    print(f"{'students, requests each, at once':<52} {f'{n}, {per}, {at_once}':>10}")
    print(f"{'requests (each a new TLS handshake)':<52} {len(answers):>10}")
    print(f"{'wall time, seconds':<52} {wall:10.2f}")
    print(f"{'requests per second':<52} {len(answers) / wall:10.0f}")
    print(f"{'p50 handshake + request, ms':<52} {statistics.median(latencies) * 1000:10.1f}")
    print(f"{'p99 handshake + request, ms':<52} {latencies[int(len(latencies) * 0.99) - 1] * 1000:10.1f}")
    print(f"{'answers not as expected (200 valid, 400 revoked)':<52} {wrong:>10}")
    print(f"{'errors (no answer)':<52} {errors:>10}")
    print(f"{'nginx memory before, after (MiB)':<52} {f'{before:.1f}, {after:.1f}':>10}")
    connected = f"{room['connected']} of {room['total']}"
    print(f"{'lab room: connected of total':<52} {connected:>10}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--load", action="store_true", help="the room under load (needs Docker)")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    n = args.students
    if args.load:
        load(n, args.requests, args.concurrency)
        return
    work = Path(tempfile.mkdtemp(prefix="lab-room-bench-"))
    try:
        roster = work / "class.txt"
        roster.write_text("\n".join(f"student{i:03d}" for i in range(n)) + "\n")
        lab = ["--dir", str(work / "lab"), "--name", "roombench"]
        sh(LAB, "render", *lab, "--image", "lab-nginx:bookworm")
        trace = work / "trace.jsonl"
        add = timed(lambda: sh(LAB, "client", "add", "--from-file", roster, *lab, env={"LAB_TRACE": str(trace)}))
        spans = [json.loads(line) for line in trace.read_text().splitlines()]
        hand = timed(lambda: sh(LAB, "handout", "--all", "--out", work / "handouts", *lab))
        # By hand, in the same CA database: what an instructor's shell loop does.
        certs = work / "lab" / "certs"
        out = work / "by-hand"
        out.mkdir()

        def by_hand():
            for i in range(n):
                name = f"hand{i:03d}"
                sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                   out / f"{name}.key")
                sh("openssl", "req", "-new", "-key", out / f"{name}.key", "-subj", f"/CN={name}", "-out",
                   out / f"{name}.csr")
                sh("openssl", "ca", "-batch", "-config", "client-ca-db/ca.cnf", "-notext", "-days", "30",
                   "-extensions", "v3_client", "-in", out / f"{name}.csr", "-out", out / f"{name}.crt", cwd=certs)
                sh("openssl", "pkcs12", "-export", "-in", out / f"{name}.crt", "-inkey", out / f"{name}.key",
                   "-passout", "pass:x", "-out", out / f"{name}.p12")

        manual = timed(by_hand)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'step':<52} {'seconds':>8}")
    print(f"{f'lab client add --from-file ({n} students)':<52} {add:8.2f}")
    print(f"{f'lab handout --all ({n} zips + roster.csv)':<52} {hand:8.2f}")
    print(f"{f'by hand: openssl key, req, ca, pkcs12 x {n}':<52} {manual:8.2f}")
    print(f"{'ratio: lab client add / by hand (target 0.30)':<52} {add / manual:8.2f}"
          f"  {'met' if add / manual <= 0.3 else 'NOT met'}")
    print(f"\nwhere lab client add's {add:.2f} s go (LAB_TRACE; per-student work summed over {_AT_ONCE_NOTE}):")
    for sp in spans:
        each = f"{sp['seconds'] / sp['count'] * 1000:7.2f} ms each" if sp["count"] > 1 else ""
        print(f"  {sp['span']:<62} {sp['seconds']:6.2f} s {each}")
    by = {sp["span"]: sp["seconds"] for sp in spans}
    command = by.get("the command, start to end", 0.0)
    stages = sum(v for k, v in by.items() if k.startswith("issue:") and not k.endswith("(per student)"))
    print(f"  {'in the command, outside those: names checked, the class list, maps':<62} {command - stages:6.2f} s")
    exit_label = "outside the command: Python's exit"
    print(f"  {exit_label:<62} {add - command - by.get(STARTED, 0.0):6.2f} s")


if __name__ == "__main__":
    main()
