"""Rendering: templates are the single source of configuration. Golden files
pin the output; the real tools (nginx -t, docker-compose) accept it."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.engine.seam import DockerEngine
from lab.pki import ca, certs
from lab.engine import compose
from lab.core import layout, settings
from lab.config import render
from lab.core.errors import LabError
from lab.core.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
RENDERED = ["docker-compose.yml", "nginx-tls/nginx.conf", "nginx-tls/hello-world.txt",
            "nginx-mtls/nginx.conf", "nginx-mtls/hello-world.txt"]


@pytest.fixture
def default_render(tmp_path):
    # No certificates: the config hash is then a pure function of the templates and settings.
    return render.render_lab(tmp_path, settings.validate(Settings(image="lab-nginx:bookworm")))


@pytest.mark.parametrize("relpath", RENDERED)
def test_golden(default_render, relpath):
    # The lab directory's absolute path (a label) varies from run to run.
    got = (default_render.lab_dir / relpath).read_text().replace(str(default_render.lab_dir.resolve()), "/LAB_DIR")
    got = got.replace(default_render.config_hash, "CONFIG_HASH")  # covers the directory too
    golden = GOLDEN / relpath.replace("/", "__")
    if os.environ.get("LAB_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text(), f"rendered {relpath} differs from {golden} (LAB_UPDATE_GOLDEN=1 rewrites it)"


def test_strict_undefined():
    with pytest.raises(LabError, match="needs a value"):
        render.render_text("nginx-tls.conf.j2", port=8888)


def test_tls_versions_and_tokens(default_render):
    for server in ("nginx-tls", "nginx-mtls"):
        conf = (default_render.lab_dir / server / "nginx.conf").read_text()
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
        assert "server_tokens off;" in conf
        assert "error_log /dev/stderr" in conf and "access_log /dev/stdout" in conf
    mtls = (default_render.lab_dir / "nginx-mtls" / "nginx.conf").read_text()
    assert "ssl_verify_client on;" in mtls
    assert "ssl_verify_client" not in (default_render.lab_dir / "nginx-tls" / "nginx.conf").read_text()


def test_compose_has_no_version_or_name_and_relative_readonly_mounts(default_render):
    doc = yaml.safe_load(default_render.compose_file.read_text())
    assert "version" not in doc and "name" not in doc
    for svc in doc["services"].values():
        for vol in svc["volumes"]:
            src, target, mode = vol.split(":")
            assert src.startswith("./") and mode == "ro", vol
            assert not src.endswith("-ca.key"), f"a CA private key is mounted: {vol}"


def test_runtime_reads_what_the_template_says(default_render):
    spec = compose.read(default_render.compose_file)
    assert spec.name == "mtls-lab" and spec.network == "mtls-lab-net"
    assert [s.container_name for s in spec.services] == ["mtls-lab-tls", "mtls-lab-mtls"]
    assert [s.published for s in spec.services] == [("127.0.0.1", 8888), ("127.0.0.1", 8889)]
    assert all(m.read_only for s in spec.services for m in s.mounts)
    assert all(m.source.is_relative_to(default_render.lab_dir) for s in spec.services for m in s.mounts)
    assert {s.labels[layout.LABEL_CONFIG_HASH] for s in spec.services} == {default_render.config_hash}


def test_ipv6_bind_is_bracketed(tmp_path):
    r = render.render_lab(tmp_path, settings.validate(Settings(bind="::1")))
    assert '"[::1]:8888:8888"' in r.compose_file.read_text()
    assert compose.read(r.compose_file).services[0].published == ("::1", 8888)


def test_config_hash_follows_inputs(tmp_path):
    a = render.render_lab(tmp_path / "a", settings.validate(Settings())).config_hash
    again = render.render_lab(tmp_path / "a", settings.validate(Settings())).config_hash
    port = render.render_lab(tmp_path / "a", settings.validate(Settings(tls_port=9443))).config_hash
    moved = render.render_lab(tmp_path / "b", settings.validate(Settings())).config_hash
    assert a == again and len({a, port, moved}) == 3


# --------------------------------------------------------------------------- the real tools


@pytest.fixture
def lab_with_certs(tmp_path):
    s = settings.validate(Settings(name="labtest-render"))
    certs.ensure(tmp_path, s)
    return render.render_lab(tmp_path, s)


def nginx_t(client, image, rendered, server) -> tuple[int, str]:
    """Run `nginx -t` in the image with the server's mounts from the compose file."""
    import docker

    svc = next(s for s in compose.read(rendered.compose_file).services if s.key == server)
    mounts = [docker.types.Mount(m.target, str(m.source), type="bind", read_only=True) for m in svc.mounts]
    assert list(svc.command[:2]) == ["nginx", "-c"]   # nginx runs the lab's own nginx.conf
    container = client.containers.create(image, ["nginx", "-t", *svc.command[1:3]], mounts=mounts,
                                         labels={layout.LABEL_LAB: "labtest-render"})
    try:
        container.start()
        return container.wait(timeout=30)["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.parametrize("server", ["tls", "mtls"])
def test_nginx_accepts_rendered_config(docker_client, image, lab_with_certs, server):
    code, logs = nginx_t(docker_client, image, lab_with_certs, server)
    assert code == 0, logs
    assert "syntax is ok" in logs and "test is successful" in logs


@pytest.mark.docker
def test_nginx_rejects_a_broken_config(docker_client, image, lab_with_certs):
    """The nginx -t check above can fail: a broken directive is caught."""
    conf = lab_with_certs.lab_dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_verify_client on;", "ssl_verify_client sometimes;"))
    code, logs = nginx_t(docker_client, image, lab_with_certs, "mtls")
    assert code != 0 and 'invalid value "sometimes"' in logs


@pytest.mark.docker
def test_compose_file_parses_with_docker_compose(lab_with_certs, docker_client):
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and docker-compose is missing: .ci/run installs it", pytrace=False)
        pytest.skip("docker-compose is not installed")
    proc = subprocess.run([exe, "config"], cwd=lab_with_certs.lab_dir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    parsed = yaml.safe_load(proc.stdout)
    assert set(parsed["services"]) == {"nginx-tls", "nginx-mtls"}


@pytest.mark.docker
def test_compose_file_runs_on_its_own(tmp_path, docker_client, image):
    """The handout promise: `docker-compose up -d` in the lab directory gives the same two servers."""
    from helpers import free_port, remove_lab, unique_name
    from lab.engine import runtime
    from lab.teach import verify

    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and docker-compose is missing: .ci/run installs it", pytrace=False)
        pytest.skip("docker-compose is not installed")
    s = settings.validate(Settings(name=unique_name("labtest-compose"), image=image, tls_port=free_port(),
                                   mtls_port=free_port()))
    certs.ensure(tmp_path, s)
    ca.ensure_fresh_crl(tmp_path)     # as lab render does: the CRL, and the identity and access maps beside it
    render.render_lab(tmp_path, s)
    try:
        proc = subprocess.run([exe, "up", "-d"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        spec = compose.read(tmp_path / layout.COMPOSE_FILE)
        runtime.wait_ready(DockerEngine(docker_client), list(spec.services), tmp_path / "certs" / layout.SERVER_CA_CRT,
                           timeout=30)
        results = verify.run(tmp_path, s)
        assert all(r.passed for r in results), [(r.scenario, r.observed) for r in results if not r.passed]
        down = subprocess.run([exe, "down"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
    finally:
        remove_lab(docker_client, s.name)
