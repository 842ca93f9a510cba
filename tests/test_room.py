"""Running a room: status, logs, doctor, render, offline images, several labs on one host."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import free_port, leftovers, ok, run
from lab.core import layout

pytestmark = pytest.mark.docker




def test_status_of_a_running_lab(new_lab):
    lab = new_lab()
    up = ok(run(*lab.up_args()))
    assert "answers TLS" in up.output and "Try next:" in up.output  # lab up ends with the status table
    data = json.loads(ok(run("status", *lab.args("--json"))).stdout)
    assert data["name"] == lab.name
    assert [(s["server"], s["state"]) for s in data["servers"]] == [("tls", "running"), ("mtls", "running")]
    assert all(s["health"].startswith("answers TLS") for s in data["servers"])
    assert {s["published"] for s in data["servers"]} == {f"127.0.0.1:{lab.tls_port}", f"127.0.0.1:{lab.mtls_port}"}
    assert all(s["image"] == lab.image for s in data["servers"])
    assert 360 <= data["certificates_days_left"] <= 366


def test_status_sees_a_killed_container_and_up_repairs_it(new_lab, docker_client):
    lab = new_lab()
    ok(run(*lab.up_args()))
    docker_client.containers.get(f"{lab.name}-mtls").kill()
    result = run("status", *lab.args())
    assert result.exit_code == 1 and "exited" in result.output
    verify = run("verify", *lab.args())
    assert verify.exit_code == 1 and "client-cert" in verify.output
    docker_client.containers.get(f"{lab.name}-tls").remove(force=True)
    assert "missing" in run("status", *lab.args()).output
    ok(run(*lab.up_args()))
    ok(run("verify", *lab.args()))


def test_status_all_lists_every_lab_and_down_of_one_leaves_the_other(new_lab, docker_client):
    first, second = new_lab(), new_lab()
    ok(run(*first.up_args()))
    ok(run(*second.up_args()))
    data = {r["name"]: r for r in json.loads(ok(run("status", "--all", "--json")).stdout)}
    assert {first.name, second.name} <= set(data)
    assert data[first.name]["dir"] == str(first.dir.resolve())
    ok(run("down", *first.args()))
    assert leftovers(docker_client, first.name) == []
    ok(run("verify", *second.args()))
    assert second.name in ok(run("status", "--all")).output


def test_logs_show_what_the_server_saw(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("verify", *lab.args()))
    mtls = ok(run("logs", "mtls", *lab.args("--tail", "20"))).stdout
    assert "client_verify=SUCCESS" in mtls and "tls=TLSv1." in mtls
    assert "client_verify=FAILED:certificate has expired" in mtls
    assert "client_verify=FAILED:unsuitable certificate purpose" in mtls
    both = ok(run("logs", *lab.args())).stdout
    assert "[tls] " in both and "[mtls] " in both
    bad = run("logs", "nope", *lab.args())
    assert bad.exit_code == 2 and "use tls or mtls" in bad.output


def test_logs_follow(new_lab):
    import selectors

    lab = new_lab()
    ok(run(*lab.up_args()))
    proc = subprocess.Popen([sys.executable, "-m", "lab", "logs", "tls", "--follow", "--tail", "0", *lab.args()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        line, deadline = "", time.monotonic() + 30
        while not line and time.monotonic() < deadline:
            # Request until the follower, however slow to start, has seen one.
            ok(run("verify", *lab.args("--scenario", "trusted")))
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
        assert '"GET /hello-world.txt HTTP/1.1" 200' in line
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
            # Ctrl-C stops a follower, as its help says: exit 0, and no word of anything "removed".
            assert proc.returncode == 0 and "removed" not in proc.stderr.read()
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            proc.send_signal(signal.SIGABRT)      # PYTHONFAULTHANDLER: every thread's stack, on stderr
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"lab logs --follow did not stop on Ctrl-C:\n{status}\n{err}")


def test_logs_of_a_lab_that_is_not_up(new_lab):
    lab = new_lab()
    result = run("logs", "tls", *lab.args())
    assert result.exit_code == 6 and "has no tls server container" in result.output


def test_doctor_all_clear(new_lab):
    lab = new_lab()
    result = ok(run("doctor", *lab.args("--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port, "--image", lab.image)))
    assert "✗" not in result.output and "0 blocking lab up" in result.output
    checks = {c["name"] for c in json.loads(ok(run("doctor", *lab.args(
        "--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port, "--image", lab.image, "--json"))).stdout)}
    assert {"docker engine", "image", "openssl", "lab directory", "certificates", "clock"} <= checks


def doctor_json(lab, *extra, env=None):
    result = run("doctor", *lab.args("--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port, "--image", lab.image,
                                     "--json", *extra), env=env)
    assert result.exit_code == 1, result.output
    return {c["name"]: c for c in json.loads(result.stdout)}


def test_doctor_engine_unreachable(new_lab, tmp_path):
    checks = doctor_json(new_lab(), env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert not checks["docker engine"]["ok"] and "setup-docker.sh" in checks["docker engine"]["fix"]


def test_doctor_port_held(new_lab):
    lab = new_lab()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", lab.tls_port))
        holder.listen()
        checks = doctor_json(lab)
    bad = checks[f"port {lab.tls_port}"]
    assert not bad["ok"] and "in use" in bad["detail"] and "--tls-port" in bad["fix"]
    assert checks[f"port {lab.mtls_port}"]["ok"]


def test_doctor_unwritable_dir(new_lab, tmp_path):
    lab = new_lab()
    (tmp_path / "file").write_text("")
    lab.dir = tmp_path / "file" / "lab"
    checks = doctor_json(lab)
    assert not checks["lab directory"]["ok"]


def test_doctor_certificate_expiring_during_the_workshop(new_lab):
    lab = new_lab()
    ok(run("render", *lab.args("--image", lab.image)))
    checks = doctor_json(lab, "--hours", str(24 * 400))
    assert not checks["certificates"]["ok"] and "--regenerate" in checks["certificates"]["fix"]


def test_doctor_image_missing(new_lab):
    lab = new_lab(image="127.0.0.1:1/lab/missing:never")
    checks = doctor_json(lab)
    assert not checks["image"]["ok"] and "lab image load" in checks["image"]["fix"]


def test_doctor_openssl_missing(new_lab, tmp_path):
    checks = doctor_json(new_lab(), env={"PATH": str(tmp_path / "empty")})
    assert not checks["openssl"]["ok"] and "apt-get install openssl" in checks["openssl"]["fix"]


def test_image_pull_unreachable_registry():
    # A registry on loopback that is not there: refused at once, nothing leaves the machine.
    result = run("image", "pull", "--image", "127.0.0.1:1/lab/missing:never")
    assert result.exit_code == 4 and "could not be pulled" in result.output and "lab image load FILE" in result.output


def test_render_starts_nothing(new_lab, docker_client):
    lab = new_lab()
    result = ok(run("render", *lab.args("--image", lab.image)))
    assert "nothing started" in result.output
    for rel in ("docker-compose.yml", "nginx-tls/nginx.conf", "nginx-mtls/nginx.conf", "certs/server.crt", "lab.yml"):
        assert (lab.dir / rel).is_file()
    assert leftovers(docker_client, lab.name) == []
    ok(run("up", *lab.args("--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port)))
    ok(run("verify", *lab.args()))


def test_port_offset(new_lab):
    for offset in range(23000, 24000, 37):
        if all(free_port_ok(layout.DEFAULT_TLS_PORT + offset + d) for d in (0, 1)):
            break
    lab = new_lab()
    ok(run("up", *lab.args("--port-offset", offset, "--image", lab.image)))
    data = json.loads(ok(run("status", *lab.args("--json"))).stdout)
    assert {s["published"] for s in data["servers"]} == {f"127.0.0.1:{8888 + offset}", f"127.0.0.1:{8889 + offset}"}
    ok(run("verify", *lab.args()))
    assert run("up", *lab.args("--port-offset", "-3")).exit_code == 2


def free_port_ok(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_same_name_from_another_directory_is_refused(new_lab, tmp_path):
    first = new_lab()
    ok(run(*first.up_args()))
    second = new_lab(name=first.name)
    second.dir = tmp_path / "elsewhere"
    second.tls_port, second.mtls_port = free_port(), free_port()
    result = run(*second.up_args())
    assert result.exit_code == 6 and f"already used by the lab in {first.dir.resolve()}" in result.output
    assert not second.dir.exists()
    ok(run("verify", *first.args()))


def test_image_save_remove_load_then_up(new_lab, docker_client, tmp_path, image):
    """An image handed out on a USB stick: saved, gone, loaded back, and the lab runs on it. No registry."""
    tag = "labtest/nginx:save-load"
    docker_client.images.get(image).tag(tag)
    try:
        tar = tmp_path / "nginx.tar"
        ok(run("image", "save", tar, "--image", tag))
        assert tar.stat().st_size > 1_000_000
        docker_client.images.remove(tag)
        lab = new_lab(image=tag)
        missing = run(*lab.up_args("--timeout", "5"))
        assert missing.exit_code == 4 and "could not be pulled" in missing.output
        assert "lab image load FILE" in missing.output
        loaded = ok(run("image", "load", tar))
        assert tag in loaded.output
        ok(run(*lab.up_args()))
        ok(run("verify", *lab.args()))
    finally:
        try:
            docker_client.images.remove(tag)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_image_errors(tmp_path):
    assert run("image", "load", tmp_path / "nope.tar").exit_code == 3
    result = run("image", "save", tmp_path / "x.tar", "--image", "labtest/absent:never")
    assert result.exit_code == 4 and "nothing to save" in result.output
    assert not (tmp_path / "x.tar").exists()
