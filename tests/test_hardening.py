"""The containers run with as little as nginx needs, and the TLS profile passes an outside scanner."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from helpers import need_tool, ok, run

pytestmark = [pytest.mark.docker, pytest.mark.faults]


@pytest.fixture(scope="module")
def hardened(module_lab):
    lab = module_lab("labtest-hardened")
    return lab


def test_containers_are_hardened_as_the_compose_file_says(hardened, docker_client):
    compose = yaml.safe_load((hardened.dir / "docker-compose.yml").read_text())
    for server in ("tls", "mtls"):
        host = docker_client.containers.get(f"{hardened.name}-{server}").attrs["HostConfig"]
        said = compose["services"][f"nginx-{server}"]
        assert host["CapDrop"] == ["ALL"] == said["cap_drop"]
        assert sorted(host["CapAdd"]) == ["CHOWN", "SETGID", "SETUID"] == sorted(said["cap_add"])
        assert host["ReadonlyRootfs"] is True and said["read_only"] is True
        assert host["SecurityOpt"] == ["no-new-privileges:true"] == said["security_opt"]
        assert host["PidsLimit"] == said["pids_limit"] == 64
        assert host["Memory"] == 128 * 1024 * 1024 and said["mem_limit"] == "128m"
        assert set(host["Tmpfs"]) == {entry.split(":")[0] for entry in said["tmpfs"]}
    # Hardened, and the lesson still works: every scenario, and a live revocation (a reload).
    ok(run("verify", *hardened.args()))
    ok(run("client", "add", "hana", *hardened.args()))
    assert "now refuses hana" in ok(run("client", "revoke", "hana", *hardened.args())).output
    # nginx wrote nothing it could not: no alert about a read-only file system.
    logs = docker_client.containers.get(f"{hardened.name}-mtls").logs().decode()
    assert "Read-only file system" not in logs and "[alert]" not in logs and "[emerg]" not in logs, logs


@pytest.mark.parametrize("server", ["tls", "mtls"])
def test_testssl_finds_nothing_low_or_worse(hardened, tmp_path, server):
    """testssl.sh (Debian's 3.0.8) against each server: protocols, cipher lists, forward secrecy, every
    cipher, LUCKY13. Version 3.0.8 has no option for a client certificate; the mTLS server completes
    the handshake without one (then answers 400), so its TLS profile is scanned all the same."""
    testssl = need_tool("testssl", "testssl.sh")
    port = hardened.tls_port if server == "tls" else hardened.mtls_port
    report = tmp_path / "testssl.json"
    proc = subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off", "--ip", "127.0.0.1",
                           "-p", "-s", "-f", "-E", "--lucky13", "--jsonfile", str(report),
                           f"https://localhost:{port}"], capture_output=True, text=True, timeout=300)
    findings = json.loads(report.read_text())
    ids = {f["id"] for f in findings}
    assert "cipher-tls1_2_xc02b" in ids and "TLS1_3" in ids, (proc.stdout[-2000:], sorted(ids))  # it really scanned
    bad = [(f["id"], f["severity"], f["finding"]) for f in findings
           if f["severity"] in ("LOW", "MEDIUM", "HIGH", "CRITICAL")]
    assert bad == [], bad
