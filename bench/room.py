#!/usr/bin/env python3
"""The scale of a room: 200 students issued and handed out, next to the same work done by hand
with openssl (key, request, signature by the CA database, PKCS#12 bundle, one student after the
other). Prints figures; asserts nothing. Needs openssl; no Docker.

    .venv/bin/python bench/room.py [--students 200]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LAB = str(BIN / "lab") if (BIN / "lab").exists() else "lab"


def sh(*args, cwd=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(map(str, args))}\n{proc.stdout}{proc.stderr}")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=200)
    n = ap.parse_args().students
    work = Path(tempfile.mkdtemp(prefix="lab-room-bench-"))
    try:
        roster = work / "class.txt"
        roster.write_text("\n".join(f"student{i:03d}" for i in range(n)) + "\n")
        lab = ["--dir", str(work / "lab"), "--name", "roombench"]
        sh(LAB, "render", *lab, "--image", "lab-nginx:bookworm")
        add = timed(lambda: sh(LAB, "client", "add", "--from-file", roster, *lab))
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
    print(f"{'ratio: lab client add / by hand':<52} {add / manual:8.2f}")


if __name__ == "__main__":
    main()
