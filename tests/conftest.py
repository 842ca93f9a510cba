"""Shared fixtures. Tests marked `docker` run against the real engine and a
real nginx image; with CI set they fail (never skip) when either is missing.

Every lab a test makes has a unique name (label) and its own ports, and is
removed by label when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import layout

IN_CI = bool(os.environ.get("CI"))
TEST_IMAGE = os.environ.get("LAB_TEST_IMAGE") or os.environ.get("LAB_IMAGE") or layout.OFFLINE_IMAGE
REPO = Path(__file__).resolve().parent.parent


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"CI is set and {reason}: .ci/run must provide it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means "no engine"
        _missing(f"no Docker engine ({e.__class__.__name__})")
    return client


@pytest.fixture(scope="session")
def image(docker_client) -> str:
    import docker

    try:
        docker_client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        _missing(f"image {TEST_IMAGE} is not present (scripts/build-nginx-image.sh builds it)")
    return TEST_IMAGE


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def remove_lab(client, name: str) -> None:
    """Remove everything labelled with this lab's name (the test's own cleanup, not lab's),
    and the lab's lock file (lab keeps it: removing a lock file races with its next user)."""
    from lab.locking import lock_path

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


@pytest.fixture
def new_lab(tmp_path, docker_client, image):
    """Parameters for a fresh, unique lab; whatever it made is removed afterwards."""
    made: list[str] = []

    def make(**overrides) -> LabParams:
        name = overrides.pop("name", None) or f"labtest-{uuid.uuid4().hex[:8]}"
        made.append(name)
        params = LabParams(name, tmp_path / name, free_port(), free_port(), image)
        for k, v in overrides.items():
            setattr(params, k, v)
        return params

    yield make
    from lab.locking import lock_path

    for name in made:
        remove_lab(docker_client, name)
        lock_path(name).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("LAB_DIR", "LAB_NAME", "LAB_TLS_PORT", "LAB_MTLS_PORT", "LAB_BIND", "LAB_IMAGE"):
        monkeypatch.delenv(var, raising=False)


def run(*args, env=None):
    """A lab command in-process (typer's CliRunner), every argument as text."""
    from typer.testing import CliRunner

    from lab.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def rendered(new_lab):
    """A lab directory with its PKI and configuration, nothing started (`lab render`)."""
    lab = new_lab()
    ok(run("render", *lab.args("--image", lab.image, "--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port)))
    return lab
