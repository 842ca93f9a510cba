"""Helpers shared by the tests (sqlite-utils' tests/utils.py): run a lab
command in-process, find what a lab left behind, pick free ports. Fixtures
live in conftest.py."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.core import layout

IN_CI = bool(os.environ.get("CI"))
TEST_IMAGE = os.environ.get("LAB_TEST_IMAGE") or os.environ.get("LAB_IMAGE") or layout.OFFLINE_IMAGE
REPO = Path(__file__).resolve().parent.parent


def missing(reason: str):
    """Skip on a developer's machine; fail in CI, which must provide everything."""
    if IN_CI:
        pytest.fail(f"CI is set and {reason}: .ci/run must provide it", pytrace=False)
    pytest.skip(reason)


_GIVEN: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on host now, and never one this test run handed out before: once the first socket is closed
    the kernel may give the same port to the next bind (a lab once got --tls-port and --mtls-port both 33803)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if (host, port) not in _GIVEN:
            _GIVEN.add((host, port))
            return port


def remove_lab(client, name: str) -> None:
    """Remove everything labelled with this lab's name (the test's own cleanup, not lab's),
    and the lab's lock file (lab keeps it: removing a lock file races with its next user)."""
    from lab.core.locking import lock_path

    lock_path(name).unlink(missing_ok=True)
    for c in client.containers.list(all=True, filters={"label": f"{layout.LABEL_LAB}={name}"}):
        c.remove(force=True)
    for n in client.networks.list(filters={"label": f"{layout.LABEL_LAB}={name}"}):
        n.remove()


def leftovers(client, name: str) -> list[str]:
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters={"label": f"{layout.LABEL_LAB}={name}"})]
    found += [f"network {n.name}" for n in client.networks.list(filters={"label": f"{layout.LABEL_LAB}={name}"})]
    # Anything with the lab's names but not its labels would be a leak too.
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters={"name": name})
              if f"container {c.name}" not in found]
    return found


@dataclass
class LabParams:
    name: str
    dir: Path
    tls_port: int
    mtls_port: int
    image: str
    bind: str = "127.0.0.1"

    def args(self, *extra: str) -> list[str]:
        return ["--dir", str(self.dir), "--name", self.name, *extra]

    def up_args(self, *extra: str) -> list[str]:
        return ["up", *self.args("--tls-port", str(self.tls_port), "--mtls-port", str(self.mtls_port),
                                 "--image", self.image, "--bind", self.bind, *extra)]


def run(*args, env=None):
    """A lab command in-process (typer's CliRunner), every argument as text."""
    from typer.testing import CliRunner

    from lab.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def need_tool(command: str, package: str) -> str:
    """The path of a tool the test needs, installed from Debian packages when it is missing
    (CI runs as root on a fresh machine); elsewhere a skip, in CI a failure."""
    import shutil
    import subprocess

    found = shutil.which(command)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], capture_output=True, env=env, timeout=900)
        found = shutil.which(command)
    if found is None:
        missing(f"{command} is not installed (Debian package {package})")
    return found


def unique_name(prefix: str) -> str:
    """A lab name no other test run on this engine uses at the same time."""
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def mtls_get(lab, login: str | tuple[Path, Path] | None, path: str) -> tuple[int, str]:
    """A real request to the lab's mTLS server on loopback, as a student (clients/LOGIN/), as the lab's own client
    ("lab-client"), with a (certificate, key) pair, or with no certificate (None): the status and the body."""
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=str(lab.dir / "certs" / "server-ca.crt"))
    if isinstance(login, tuple):
        ctx.load_cert_chain(str(login[0]), str(login[1]))
    elif login == "lab-client":
        ctx.load_cert_chain(str(lab.dir / "certs" / "client.crt"), str(lab.dir / "certs" / "client.key"))
    elif login:
        folder = lab.dir / "clients" / login
        ctx.load_cert_chain(str(folder / f"{login}.crt"), str(folder / f"{login}.key"))
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()
