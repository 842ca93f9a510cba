"""Shared fixtures. Tests marked `docker` run against the real engine and a
real nginx image; with CI set they fail (never skip) when either is missing.
Tests without the mark need no engine: `pytest -m "not docker"` passes with
DOCKER_HOST pointing nowhere.

Every lab a test makes has a unique name (label) and its own ports, and is
removed by label when the test ends, pass or fail.
"""

from __future__ import annotations

import uuid

import pytest

from helpers import TEST_IMAGE, LabParams, free_port, missing, ok, remove_lab, run, unique_name


def pytest_report_header(config):
    """Which nginx and OpenSSL the docker suite runs against (the labels scripts/build-nginx-image.sh sets)."""
    try:
        import docker

        labels = docker.from_env(timeout=5).images.get(TEST_IMAGE).labels or {}
    except Exception:  # noqa: BLE001 - no engine or no image: the docker tests say so themselves
        return f"lab test image: {TEST_IMAGE} (not here)"
    return (f"lab test image: {TEST_IMAGE}: nginx {labels.get('io.mtls-lab.nginx', '?')}, "
            f"OpenSSL {labels.get('io.mtls-lab.openssl', '?')}")


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_reaches_children():
    """A run started in the background (`cmd &` in a script, nohup) inherits SIGINT ignored, and so would
    every lab the tests start: a test that sends Ctrl-C would then see nothing happen, or pass for the
    wrong reason. A handler here is reset to the default in each child, as in a terminal."""
    import signal

    for sig in (signal.SIGINT, signal.SIGQUIT):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    yield


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means "no engine"
        missing(f"no Docker engine ({e.__class__.__name__})")
    return client


@pytest.fixture(scope="session")
def image(docker_client) -> str:
    import docker

    try:
        docker_client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        missing(f"image {TEST_IMAGE} is not present (scripts/build-nginx-image.sh builds it)")
    return TEST_IMAGE


@pytest.fixture
def lab_params(tmp_path):
    """Parameters for fresh, unique labs, for tests that need no engine; their lock files are removed."""
    from lab.core.locking import lock_path

    made: list[str] = []

    def make(**overrides) -> LabParams:
        name = overrides.pop("name", None) or f"labtest-{uuid.uuid4().hex[:8]}"
        made.append(name)
        params = LabParams(name, tmp_path / name, free_port(), free_port(), TEST_IMAGE)
        for k, v in overrides.items():
            setattr(params, k, v)
        return params

    make.made = made
    yield make
    for name in made:
        lock_path(name).unlink(missing_ok=True)


@pytest.fixture
def new_lab(lab_params, docker_client, image):
    """Like lab_params, for labs that run: whatever they made on the engine is removed afterwards
    (`rendered` labs too, when a test asks for both)."""
    yield lab_params
    for name in lab_params.made:
        remove_lab(docker_client, name)


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory, docker_client, image):
    """Running labs shared by the tests of one module: module_lab("labtest-x") starts one; all are removed after."""
    made: list[str] = []

    def make(prefix: str, folder: str = "lab") -> LabParams:
        lab = LabParams(unique_name(prefix), tmp_path_factory.mktemp(prefix) / folder, free_port(), free_port(), image)
        made.append(lab.name)
        ok(run(*lab.up_args()))
        return lab

    yield make
    for name in made:
        remove_lab(docker_client, name)


@pytest.fixture(autouse=True)
def _no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("LAB_DIR", "LAB_NAME", "LAB_TLS_PORT", "LAB_MTLS_PORT", "LAB_BIND", "LAB_IMAGE", "LAB_PORT_OFFSET",
                "LAB_WIDE", "LAB_REVOCATION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def rendered(lab_params):
    """A lab directory with its PKI and configuration, nothing started (`lab render`): no engine needed."""
    lab = lab_params()
    ok(run("render", *lab.args("--image", lab.image, "--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port)))
    return lab


@pytest.fixture(scope="session", autouse=True)
def _sweep_test_labs(tmp_path_factory):
    """Last line of defence: whatever a lab of this test run left on the engine is removed when the run ends,
    and named. Only this run's (its labs live under this run's temporary folder): another run may share the engine."""
    base = str(tmp_path_factory.getbasetemp().resolve())
    yield
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception:  # noqa: BLE001 - no engine: nothing can be left on it
        return
    left = [c for c in client.containers.list(all=True, filters={"label": "io.mtls-lab.lab"})
            if c.labels.get("io.mtls-lab.lab", "").startswith("labtest-")
            and c.labels.get("io.mtls-lab.dir", "").startswith(base)]
    names = sorted({c.labels["io.mtls-lab.lab"] for c in left})
    for name in names:
        remove_lab(client, name)
    if names:
        import warnings

        warnings.warn(f"test labs left behind and now removed: {', '.join(names)}")
