"""The lab end to end, against the real Docker engine and real nginx:
`lab up`, real TLS handshakes, `lab verify`, `lab down`, and each error case
with nothing left behind. In-process through typer's CliRunner."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import ssl
import subprocess

import pytest

from helpers import leftovers, ok, remove_lab, run, unique_name
from lab.engine.seam import DockerEngine
from lab.core import layout
from lab.core.errors import LabError
from lab.engine import runtime
from lab.engine.network import NetworkAhead

pytestmark = pytest.mark.docker


def assert_ok(result):
    ok(result)


def assert_clean(client, lab, lab_dir=None):
    assert leftovers(client, lab.name) == []
    if lab_dir is not None:
        assert not lab_dir.exists(), f"{lab_dir} was left behind: {list(lab_dir.rglob('*'))}"


# --------------------------------------------------------------------------- one running lab, many checks


@pytest.fixture(scope="module")
def running(tmp_path_factory, image):
    import docker

    from helpers import LabParams, free_port

    client = docker.from_env()
    lab = LabParams(unique_name("labtest-main"), tmp_path_factory.mktemp("main") / "lab", free_port(), free_port(), image)
    remove_lab(client, lab.name)
    result = run(*lab.up_args())
    assert_ok(result)
    yield lab, result
    remove_lab(client, lab.name)


def test_up_says_what_it_made(running):
    lab, result = running
    assert f"lab {lab.name} is up" in result.output
    assert f"https://localhost:{lab.tls_port}/hello-world.txt" in result.output
    assert f"https://localhost:{lab.mtls_port}/hello-world.txt" in result.output
    assert "lab verify" in result.output and "lab down" in result.output
    for rel in ("certs/server-ca.crt", "certs/client.key", "nginx-tls/nginx.conf", "nginx-tls/hello-world.txt",
                "nginx-mtls/nginx.conf", "nginx-mtls/hello-world.txt", "docker-compose.yml", "lab.yml"):
        assert (lab.dir / rel).is_file(), rel


def test_containers_are_labelled_and_mount_read_only(running, docker_client):
    lab, _ = running
    containers = docker_client.containers.list(all=True, filters={"label": f"{layout.LABEL_LAB}={lab.name}"})
    assert sorted(c.name for c in containers) == [f"{lab.name}-mtls", f"{lab.name}-tls"]
    for c in containers:
        assert c.status == "running"
        mounts = c.attrs["Mounts"]
        assert mounts and all(not m["RW"] for m in mounts)
        assert not any(m["Source"].endswith("-ca.key") for m in mounts)
        bindings = c.attrs["HostConfig"]["PortBindings"]
        assert all(b["HostIp"] == "127.0.0.1" for v in bindings.values() for b in v)
    nets = runtime.lab_networks(DockerEngine(docker_client), lab.name)
    assert [n.name for n in nets] == [f"{lab.name}-net"]


def test_verify_passes_every_scenario(running):
    lab, _ = running
    result = run("verify", *lab.args())
    assert_ok(result)
    assert "13 passed, 0 failed" in result.output
    assert "No required SSL certificate was sent" in result.output


def test_verify_json(running):
    lab, _ = running
    result = run("verify", *lab.args("--json"))
    assert_ok(result)
    data = {r["scenario"]: r for r in json.loads(result.stdout)}
    assert all(r["passed"] for r in data.values())
    assert data["no-cert"]["detail"]["status"] == 400
    assert data["no-cert"]["detail"]["reason"] == "No required SSL certificate was sent"
    seen = data["client-cert"]["detail"]
    assert seen["client_verify"] == "SUCCESS" and f"OU={lab.name}" in seen["client_subject"]
    assert data["untrusted"]["detail"]["kind"] == "tls-error"
    assert data["trusted"]["detail"]["tls_version"] in ("TLSv1.2", "TLSv1.3")


OBSERVED = {
    # scenario: what the verifier must have seen (detail key, exact value)
    "trusted": ("status", 200),
    "untrusted": ("reason", "unable to get local issuer certificate"),
    "insecure": ("status", 200),
    "wrong-name": ("reason", "Hostname mismatch, certificate is not valid for 'wrong-name.invalid'."),
    "client-cert": ("client_verify", "SUCCESS"),
    "no-cert": ("reason", "No required SSL certificate was sent"),
    "rogue-ca": ("client_verify", "FAILED:unable to verify the first certificate"),
    "expired": ("client_verify", "FAILED:certificate has expired"),
    "wrong-purpose": ("client_verify", "FAILED:unsuitable certificate purpose"),
    "forbidden": ("identity", "lab-client:student"),
    "instructor-only": ("identity", "lab-instructor:instructor"),
    "same-cn-other-ca": ("identity", ""),         # authenticated (a CA the server trusts), and nobody the lab knows
    "spiffe-id": ("identity", "lab-instructor:instructor"),
}


def test_every_scenario_observes_its_reason(running):
    lab, _ = running
    result = run("verify", *lab.args("--json"))
    assert_ok(result)
    data = {r["scenario"]: r["detail"] for r in json.loads(result.stdout)}
    assert set(data) == set(OBSERVED)
    for scenario, (key, value) in OBSERVED.items():
        assert data[scenario].get(key) == value, (scenario, data[scenario])
    for scenario in ("rogue-ca", "expired", "wrong-purpose"):
        assert data[scenario]["status"] == 400 and data[scenario]["reason"] == "The SSL certificate error"
    assert "rogue client" in data["rogue-ca"]["client_subject"]
    layers = {r["scenario"]: r["layer"] for r in json.loads(result.stdout)}
    assert layers["forbidden"] == layers["same-cn-other-ca"] == "authorization" and layers["expired"] == "authentication"
    assert layers["untrusted"] == "handshake" and layers["instructor-only"] == "served"
    # The impostor's subject is the instructor's, to the byte, as the server saw both: only the issuer differs.
    assert data["same-cn-other-ca"]["client_subject"] == data["instructor-only"]["client_subject"]
    assert data["same-cn-other-ca"]["client_verify"] == "SUCCESS" and data["same-cn-other-ca"]["status"] == 403
    assert data["spiffe-id"]["spiffe_id"] == f"spiffe://{lab.name}/instructor/lab-instructor"


def test_show_commands(running):
    lab, _ = running
    result = run("verify", *lab.args("--show-commands"))
    assert_ok(result)
    assert result.output.count("$ curl") == 13
    assert f"https://localhost:{lab.mtls_port}/hello-world.txt" in result.output


def test_verify_with_host(running):
    """A student checking the instructor's lab by address: 127.0.0.1 is in the server certificate."""
    lab, _ = running
    result = run("verify", *lab.args("--host", "127.0.0.1", "--json"))
    assert_ok(result)
    data = json.loads(result.stdout)
    assert {r["detail"]["host"] for r in data if r["scenario"] != "wrong-name"} == {"127.0.0.1"}
    printed = run("curl", "trusted", *lab.args("--host", "127.0.0.1"))
    assert printed.stdout.strip().endswith(f"https://127.0.0.1:{lab.tls_port}/hello-world.txt")
    bad = run("verify", *lab.args("--host", "not a host"))
    assert bad.exit_code == 2


def test_verify_one_scenario_and_unknown_scenario(running):
    lab, _ = running
    result = run("verify", *lab.args("--scenario", "no-cert", "--json"))
    assert_ok(result)
    assert [r["scenario"] for r in json.loads(result.stdout)] == ["no-cert"]
    bad = run("verify", *lab.args("--scenario", "nope"))
    assert bad.exit_code == 2 and "unknown scenario nope" in bad.output


def test_up_twice_is_one_healthy_lab(running, docker_client):
    lab, _ = running
    before = sorted(c.id for c in runtime.lab_containers(DockerEngine(docker_client), lab.name))
    result = run(*lab.up_args())
    assert_ok(result)
    assert "already up" in result.output
    assert sorted(c.id for c in runtime.lab_containers(DockerEngine(docker_client), lab.name)) == before


EXPECTED_CURL = {
    # scenario: (curl exit code, text in its output)
    "trusted": (0, "Hello, world!"),
    "untrusted": (60, "unable to get local issuer certificate"),
    "insecure": (0, "Hello, world!"),
    "wrong-name": (60, "wrong-name.invalid"),
    "client-cert": (0, "Hello, world!"),
    "no-cert": (0, "No required SSL certificate was sent"),
    "rogue-ca": (0, "The SSL certificate error"),
    "expired": (0, "The SSL certificate error"),
    "wrong-purpose": (0, "The SSL certificate error"),
}


@pytest.mark.parametrize("scenario", list(EXPECTED_CURL))
def test_printed_curl_commands_really_do_that(running, scenario):
    """The command `lab curl` prints, pasted into a shell, shows the same outcome."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    lab, _ = running
    printed = run("curl", scenario, *lab.args())
    assert_ok(printed)
    proc = subprocess.run(shlex.split(printed.stdout), capture_output=True, text=True, timeout=30)
    code, text = EXPECTED_CURL[scenario]
    assert proc.returncode == code, proc.stderr
    assert text in proc.stdout + proc.stderr
    if code == 0 and scenario in ("no-cert", "rogue-ca", "expired", "wrong-purpose"):
        assert proc.stdout.startswith("HTTP/1.1 400")


def test_openssl_s_client_agrees(running):
    lab, _ = running
    certs = lab.dir / "certs"
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{lab.mtls_port}", "-servername", "localhost",
            "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof", "-CAfile", str(certs / "server-ca.crt")]
    ok = subprocess.run(base + ["-cert", str(certs / "client.crt"), "-key", str(certs / "client.key")],
                        input="GET /hello-world.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                        capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in ok.stdout and "HTTP/1.1 200 OK" in ok.stdout, ok.stdout + ok.stderr
    # Trusting the wrong CA (the client CA) must fail the same way the verifier says.
    other = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{lab.tls_port}", "-verify_return_error",
                            "-CAfile", str(certs / "client-ca.crt")], input="", capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and "unable to get local issuer certificate" in other.stdout + other.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version,accepted", [("TLSv1_1", False), ("TLSv1_2", True), ("TLSv1_3", True)])
def test_server_allows_tls_1_2_and_1_3_only(running, version, accepted):
    lab, _ = running
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions: the refusal must be the server's
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", lab.tls_port), timeout=5) as raw:
        if accepted:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == version.replace("_", ".")
        else:
            with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
                ctx.wrap_socket(raw, server_hostname="localhost")


# --------------------------------------------------------------------------- whole cycles


def test_down_removes_exactly_the_lab(new_lab, docker_client, image):
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    bystander = docker_client.containers.create(image, ["true"], name=f"{lab.name}-bystander")
    try:
        result = run("down", *lab.args())
        assert_ok(result)
        assert f"container {lab.name}-tls" in result.output and f"network {lab.name}-net" in result.output
        assert runtime.lab_containers(DockerEngine(docker_client), lab.name) == []
        docker_client.containers.get(bystander.id)  # untouched: it has no lab label
        again = run("down", *lab.args())
        assert_ok(again)
        assert "nothing of it was running" in again.output
        assert lab.dir.is_dir()
        assert_ok(run("down", *lab.args("--purge")))
        assert not lab.dir.exists()
    finally:
        bystander.remove(force=True)


def test_settings_are_saved_for_later_commands(new_lab, docker_client, monkeypatch, tmp_path):
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    monkeypatch.chdir(lab.dir.parent)
    # Only --dir: name, ports and image come from lab.yml.
    assert_ok(run("verify", "--dir", lab.dir.name))
    assert_ok(run("up", "--dir", lab.dir.name))
    result = run("down", "--dir", lab.dir.name)
    assert_ok(result)
    assert leftovers(docker_client, lab.name) == []


def test_changed_port_recreates(new_lab, docker_client):
    from helpers import free_port

    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    lab.tls_port = free_port()
    result = run(*lab.up_args())
    assert_ok(result)
    assert "is up" in result.output
    assert_ok(run("verify", *lab.args()))


def test_bind_other_loopback_address(new_lab):
    lab = new_lab(bind="127.0.0.2")
    assert_ok(run(*lab.up_args()))
    result = run("verify", *lab.args("--json"))
    assert_ok(result)
    assert {r["detail"]["address"].rsplit(":", 1)[0] for r in json.loads(result.stdout)} == {"127.0.0.2"}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", lab.tls_port), timeout=2).close()


def test_verify_fails_loudly_on_a_broken_lab(new_lab, docker_client):
    """A server that accepts what it should reject is a failure, with a non-zero exit."""
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_verify_client on;", "ssl_verify_client optional;"))
    docker_client.containers.get(f"{lab.name}-mtls").remove(force=True)
    runtime.up(lab.dir / layout.COMPOSE_FILE, lab.dir / "certs" / layout.SERVER_CA_CRT)
    result = run("verify", *lab.args("--json"))
    assert result.exit_code == 1
    failed = [r for r in json.loads(result.stdout) if not r["passed"]]
    assert [r["scenario"] for r in failed] == ["no-cert"]
    assert failed[0]["observed"].startswith("HTTP 200")
    assert "1 of 13 scenarios did not behave as expected: no-cert" in result.output


def test_host_not_in_certificate_fails_then_san_fixes_it(new_lab):
    lab = new_lab(bind="127.0.0.2")
    assert_ok(run(*lab.up_args()))
    result = run("verify", *lab.args("--host", "127.0.0.2", "--scenario", "trusted", "--json"))
    assert result.exit_code == 1
    assert "IP address mismatch, certificate is not valid for '127.0.0.2'" in json.loads(result.stdout)[0]["observed"]
    renewed = run(*lab.up_args("--san", "127.0.0.2"))
    assert_ok(renewed)
    assert "renewed       the server CA and certificate, for the new names" in renewed.output
    assert_ok(run("verify", *lab.args("--host", "127.0.0.2")))


def test_verify_when_lab_is_down(new_lab):
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    assert_ok(run("down", *lab.args()))
    result = run("verify", *lab.args())
    assert result.exit_code == 1
    assert f"lab {lab.name} is not running: `lab up` starts it" in result.output


# --------------------------------------------------------------------------- errors: clear, non-zero, nothing left


def test_engine_unreachable(new_lab, tmp_path):
    lab = new_lab()
    result = run(*lab.up_args(), env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.exit_code == 4
    assert "cannot reach the Docker engine" in result.output and "setup-docker.sh" in result.output
    assert not lab.dir.exists()
    for cmd in (["down", *lab.args()],):
        assert run(*cmd, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}).exit_code == 4


def test_port_in_use(new_lab, docker_client):
    lab = new_lab()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", lab.mtls_port))
        holder.listen()
        result = run(*lab.up_args())
    assert result.exit_code == 6
    assert f"port {lab.mtls_port} on 127.0.0.1 is already in use" in result.output
    assert "--mtls-port" in result.output
    assert_clean(docker_client, lab, lab.dir)


def test_port_held_by_another_lab_names_it(new_lab, docker_client):
    first = new_lab()
    assert_ok(run(*first.up_args()))
    second = new_lab(tls_port=first.tls_port)
    result = run(*second.up_args())
    assert result.exit_code == 6
    assert f"by lab '{first.name}'" in result.output
    assert_clean(docker_client, second, second.dir)
    assert_ok(run("verify", *first.args()))


def test_image_missing_and_not_pullable(new_lab, docker_client):
    # A registry on loopback that is not there: the pull fails at once, and no traffic leaves the machine.
    lab = new_lab(image="127.0.0.1:1/lab/missing:never")
    result = run(*lab.up_args())
    assert result.exit_code == 4
    assert "image 127.0.0.1:1/lab/missing:never is not on this machine and could not be pulled" in result.output
    assert "build-nginx-image.sh" in result.output
    if docker_client.images.list(name=layout.OFFLINE_IMAGE):
        assert f"fix: {layout.OFFLINE_IMAGE} is on this machine: lab up --image {layout.OFFLINE_IMAGE}" in result.output
    assert_clean(docker_client, lab, lab.dir)


def test_openssl_missing(new_lab, docker_client, tmp_path):
    lab = new_lab()
    result = run(*lab.up_args(), env={"PATH": str(tmp_path / "empty")})
    assert result.exit_code == 5
    assert "openssl is not installed" in result.output
    assert_clean(docker_client, lab, lab.dir)


def test_equal_ports(new_lab, docker_client):
    lab = new_lab()
    lab.mtls_port = lab.tls_port
    result = run(*lab.up_args())
    assert result.exit_code == 2 and "the two servers need two ports" in result.output
    assert_clean(docker_client, lab, lab.dir)


def test_lab_dir_not_writable(new_lab, docker_client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    lab = new_lab()
    lab.dir = blocker / "lab"
    result = run(*lab.up_args())
    assert result.exit_code == 3 and "is not writable" in result.output
    assert_clean(docker_client, lab)


def test_lab_dir_is_a_file(new_lab, tmp_path):
    lab = new_lab()
    lab.dir = tmp_path / "a-file"
    lab.dir.write_text("keep me")
    result = run(*lab.up_args())
    assert result.exit_code == 2 and "is a file" in result.output
    assert lab.dir.read_text() == "keep me"


def test_mismatched_key_starts_nothing(new_lab, docker_client):
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    assert_ok(run("down", *lab.args()))
    certs = lab.dir / "certs"
    (certs / "server.key").write_bytes((certs / "client.key").read_bytes())
    result = run(*lab.up_args())
    assert result.exit_code == 5
    assert "server.key does not match" in result.output and "--regenerate" in result.output
    assert leftovers(docker_client, lab.name) == []
    assert_ok(run(*lab.up_args("--regenerate")))
    assert_ok(run("verify", *lab.args()))


def test_nginx_that_exits_is_rolled_back_with_its_message(new_lab, docker_client):
    """A container that dies at start: the error carries nginx's own words, and this run's containers are gone."""
    lab = new_lab()
    assert_ok(run(*lab.up_args()))
    assert_ok(run("down", *lab.args()))
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_verify_client on;", "ssl_verify_client sometimes;"))
    with pytest.raises(runtime.RuntimeFailure) as e:
        runtime.up(lab.dir / layout.COMPOSE_FILE, lab.dir / "certs" / layout.SERVER_CA_CRT, timeout=15)
    assert f"{lab.name}-mtls exited" in str(e.value)
    assert 'invalid value "sometimes"' in e.value.details
    assert leftovers(docker_client, lab.name) == []


def test_unlabelled_container_with_the_labs_name_is_not_touched(new_lab, docker_client, image):
    lab = new_lab()
    squatter = docker_client.containers.create(image, ["true"], name=f"{lab.name}-tls")
    try:
        result = run(*lab.up_args())
        assert result.exit_code == 6 and "was not made by this lab" in result.output
        docker_client.containers.get(squatter.id)
        assert runtime.lab_containers(DockerEngine(docker_client), lab.name) == []
    finally:
        squatter.remove(force=True)


def test_bind_ipv6_loopback(new_lab):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    lab = new_lab(bind="::1")
    assert_ok(run(*lab.up_args()))
    data = json.loads(run("verify", *lab.args("--json")).stdout)
    assert all(r["passed"] for r in data) and data[0]["detail"]["address"] == f"[::1]:{lab.tls_port}"
    seen = json.loads(ok(run("handshake", "--json", *lab.args())).stdout)
    assert seen["address"] == f"[::1]:{lab.mtls_port}" and seen["http_status"] == 200


@pytest.mark.docker
def test_the_same_lab_named_another_way_is_the_same_lab(new_lab, monkeypatch):
    """`lab status --dir /abs/path` after `lab up --dir rel` said both servers ran an older nginx.conf and CRL
    (what a server loaded was remembered by the path as typed)."""
    lab = new_lab()
    monkeypatch.chdir(lab.dir.parent)
    assert_ok(run("up", "--dir", lab.dir.name, "--name", lab.name, "--image", lab.image, "--tls-port", lab.tls_port,
                  "--mtls-port", lab.mtls_port))
    for spelling in (lab.dir.resolve(), f"./{lab.dir.name}", lab.dir.name):
        shown = ok(run("status", "--dir", spelling)).output
        assert "runs an older" not in shown and "both servers run the files" in shown, (spelling, shown)


@pytest.mark.docker
def test_on_an_80_column_projector_no_fact_is_cut(new_lab):
    """At 80 columns `lab status` cut the published address to `0.0.0.0:2…` and `lab verify` ran past 80 lines
    with verdicts cut mid-word. In the projector's layout the ports and verdicts are whole, verify one screen."""
    lab = new_lab()
    ok(run(*lab.up_args()))
    narrow = {"COLUMNS": "80"}
    status = ok(run("status", *lab.args(), env=narrow)).output
    assert f"127.0.0.1:{lab.tls_port}" in status and f"127.0.0.1:{lab.mtls_port}" in status and "…" not in status
    shown = ok(run("verify", *lab.args(), env=narrow)).output
    lines = shown.splitlines()
    assert len(lines) <= 24 and "…" not in shown and max(len(line.rstrip()) for line in lines) <= 80, shown
    for verdict in ("FAILED:certificate has expired", "FAILED:unsuitable certificate purpose", "Hostname mismatch"):
        assert verdict in " ".join(line.strip() for line in lines), verdict
    wide = ok(run("verify", "--explain", *lab.args(), env=narrow)).output
    assert "what it shows" in wide
    # lab verify NAME…: those scenarios, each with what it shows under it.
    named = ok(run("verify", "expired", "no-cert", *lab.args(), env=narrow)).output
    assert "2 passed, 0 failed" in named and "trusted" not in named
    assert "whose validity has ended is refused" in " ".join(named.split()), named
    assert run("verify", "expird", *lab.args(), env=narrow).exit_code == 2


def test_width_chooses_the_projector_layout(rendered):
    """`lab --width 80 …` lays out for a projector whatever the terminal says (tests run at COLUMNS=200)."""
    wide = run("--width", "200", "verify", *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    narrow = run("--width", "80", "verify", *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert "what it shows" in wide.output and "what it shows" not in narrow.output
    assert "lab verify --explain" in narrow.output
    assert run("--width", "5", "status").exit_code == 2


@pytest.mark.parametrize("failure", [LabError("the configuration cannot be written"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_a_cold_up_failing_after_its_network_was_made_ahead_leaves_nothing(new_lab, docker_client, monkeypatch,
                                                                           failure):
    """A cold `lab up` makes its network while gen-certs.sh finishes (NetworkAhead). A failure or a
    Ctrl-C before the containers are made takes that network away again, with the lab directory it made."""
    import time

    from lab.config import render

    lab = new_lab()
    seen: list[str] = []

    def failing(*args, **kwargs):
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:     # the network made ahead, by its label
            seen.extend(n.name for n in docker_client.networks.list(filters={"label": f"{layout.LABEL_LAB}={lab.name}"}))
            time.sleep(0.05)
        raise failure

    monkeypatch.setattr(render, "render_lab", failing)
    result = run(*lab.up_args())
    assert result.exit_code == (130 if isinstance(failure, KeyboardInterrupt) else 3), result.output
    assert seen == [f"{lab.name}-net"]
    assert leftovers(docker_client, lab.name) == [] and not lab.dir.exists()
    monkeypatch.undo()
    assert_ok(run(*lab.up_args()))
    assert_ok(run("verify", *lab.args()))


def test_a_ctrl_c_right_as_the_network_is_started_ahead_leaves_nothing(new_lab, docker_client, monkeypatch):
    """The Ctrl-C lands in `lab up` the moment the network's thread has started, before anything else: the
    clean-up knows that network already, waits for it and takes it away."""
    lab = new_lab()
    real = NetworkAhead.start

    def start_then_interrupt(self):
        real(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(NetworkAhead, "start", start_then_interrupt)
    result = run(*lab.up_args())
    assert result.exit_code == 130, result.output
    assert leftovers(docker_client, lab.name) == [] and not lab.dir.exists()
