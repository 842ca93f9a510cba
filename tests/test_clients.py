"""A certificate for every student: issue, list, revoke live, bundles, the whole PKI."""

from __future__ import annotations

import datetime as dt
import json
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from helpers import ok, run
from lab.core import layout
from lab.pki import ca, students




def whoami(lab, student: str) -> str:
    """GET /whoami on the mTLS server as a student, the way the student README says."""
    import http.client
    import ssl

    folder = lab.dir / "clients" / student
    ctx = ssl.create_default_context(cafile=str(folder / "server-ca.crt"))
    ctx.load_cert_chain(str(folder / f"{student}.crt"), str(folder / f"{student}.key"))
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    conn.request("GET", "/whoami")
    body = conn.getresponse().read().decode()
    conn.close()
    return body


@pytest.mark.docker
def test_three_students_each_greeted_by_name_then_one_revoked_live(new_lab, docker_client):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "alice", "bob", "carol", *lab.args()))
    for student in ("alice", "bob", "carol"):
        data = json.loads(ok(run("verify", *lab.args("--as", student, "--scenario", "client-cert", "--json"))).stdout)
        assert data[0]["passed"] and f"CN={student}," in data[0]["detail"]["client_subject"]
        assert whoami(lab, student).startswith(f"Hello, {student}! The server verified your certificate: SUCCESS")
    started = docker_client.containers.get(f"{lab.name}-mtls").attrs["State"]["StartedAt"]

    revoked = ok(run("client", "revoke", "bob", *lab.args()))
    assert "now refuses bob" in revoked.output and "FAILED:certificate revoked" in revoked.output
    # No downtime: the same container, never restarted.
    assert docker_client.containers.get(f"{lab.name}-mtls").attrs["State"]["StartedAt"] == started
    result = json.loads(ok(run("verify", *lab.args("--scenario", "revoked", "--json"))).stdout)[0]
    assert result["detail"]["status"] == 400 and result["detail"]["client_verify"] == "FAILED:certificate revoked"
    for student in ("alice", "carol"):
        ok(run("verify", *lab.args("--as", student, "--scenario", "client-cert")))
    bad = run("verify", *lab.args("--as", "bob"))
    assert bad.exit_code == 2 and "bob's certificate is revoked" in bad.output
    # The whole matrix now has ten scenarios, all passing.
    assert "14 passed, 0 failed" in ok(run("verify", *lab.args())).output
    # The logs say why.
    assert "client_verify=FAILED:certificate revoked" in ok(run("logs", "mtls", *lab.args())).stdout
    if __import__("shutil").which("curl"):
        cmd = ok(run("curl", "revoked", *lab.args())).stdout.split()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert proc.stdout.startswith("HTTP/1.1 400") and "The SSL certificate error" in proc.stdout


def test_student_folder_and_p12(rendered):
    ok(run("client", "add", "dana", *rendered.args()))
    folder = rendered.dir / "clients" / "dana"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["dana.crt", "dana.key", "dana.p12", "server-ca.crt", "client-ca.crt", "README.txt"])
    secret_file = rendered.dir / "passwords" / "dana.p12.password"
    assert secret_file.stat().st_mode & 0o077 == 0 and (rendered.dir / "passwords").stat().st_mode & 0o077 == 0
    for secret in ("dana.key",):
        assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600
    password = secret_file.read_bytes()
    assert not password.endswith(b"\n")      # the password alone: some clients take a newline as part of it
    assert len(password) >= 16
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates((folder / "dana.p12").read_bytes(), b"")
    key, cert, extra = pkcs12.load_key_and_certificates((folder / "dana.p12").read_bytes(), password)
    assert cert == x509.load_pem_x509_certificate((folder / "dana.crt").read_bytes())
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, pub) == \
        cert.public_key().public_bytes(serialization.Encoding.DER, pub)
    assert extra == []      # the certificate and key alone: importing it adds nothing the clean-up would miss
    strict = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile",
                             str(folder / "client-ca.crt"), str(folder / "dana.crt")], capture_output=True, text=True)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    readme = (folder / "README.txt").read_text()
    assert f"--cert dana.crt --key dana.key https://localhost:{rendered.mtls_port}/hello-world.txt" in readme


def test_legacy_p12_opens_with_openssl(rendered):
    ok(run("client", "add", "old-mac", "--legacy-p12", *rendered.args()))
    folder = rendered.dir / "clients" / "old-mac"
    info = subprocess.run(["openssl", "pkcs12", "-info", "-noout", "-in", str(folder / "old-mac.p12"),
                           "-passin", f"file:{rendered.dir / 'passwords' / 'old-mac.p12.password'}"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr and "MAC: sha1" in info.stderr
    ok(run("client", "add", "new-mac", *rendered.args()))
    folder = rendered.dir / "clients" / "new-mac"
    modern = subprocess.run(["openssl", "pkcs12", "-info", "-noout", "-in", str(folder / "new-mac.p12"),
                             "-passin", f"file:{rendered.dir / 'passwords' / 'new-mac.p12.password'}"], capture_output=True, text=True)
    assert modern.returncode == 0 and "AES-256-CBC" in modern.stderr and "TripleDES" not in modern.stderr


def test_list_and_serials_unique(rendered, tmp_path):
    roster = tmp_path / "class.txt"
    roster.write_text("# class of today\nerin\n\nfrank\n")
    ok(run("client", "add", "--from-file", roster, "gus", *rendered.args()))
    data = json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)
    assert [(c["name"], c["status"]) for c in data] == [("erin", "valid"), ("frank", "valid"), ("gus", "valid")]
    assert len({c["serial"] for c in data}) == 3
    ok(run("client", "revoke", "frank", *rendered.args()))  # the lab is not running: CRL only
    data = {c["name"]: c["status"] for c in json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)}
    assert data == {"erin": "valid", "frank": "revoked", "gus": "valid"}
    expired = students.list_students(rendered.dir, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400))
    assert {c.name: c.status for c in expired} == {"erin": "expired", "frank": "revoked", "gus": "expired"}


@pytest.mark.parametrize("names,message", [
    (["../evil"], "'/' is not allowed in a name"), (["_x"], "starts with a letter or a digit"),
    ([".hidden"], "starts with a letter or a digit"), (["ok", "bad/name"], "'/' is not allowed in a name"),
    (["x" * 65], "a certificate's common name holds 64"), (["twice", "twice"], "more than once"),
    (["Robert'); DROP"], "';' is not allowed"), (["<b>bold</b>"], "'<' is not allowed"), (["a$b"], "'$' is not allowed"),
    (["bell\x07"], "U+0007"), (["x\u202eevil"], "U+202E"), (["👩‍🎓"], "is not allowed in a name"),
])
def test_bad_student_names_write_nothing(rendered, names, message):
    result = run("client", "add", *names, *rendered.args())
    assert result.exit_code == 2 and message in result.output
    assert not (rendered.dir / "clients").exists() or list((rendered.dir / "clients").iterdir()) == []


def test_readd_needs_force_and_force_revokes_the_old(rendered):
    ok(run("client", "add", "hana", *rendered.args()))
    old_serial = json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)[0]["serial"]
    again = run("client", "add", "hana", *rendered.args())
    assert again.exit_code == 2 and "hana already has a certificate: use --force" in again.output
    ok(run("client", "add", "hana", "--force", *rendered.args()))
    new = json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)[0]
    assert new["serial"] != old_serial and new["status"] == "valid"
    assert int(old_serial, 16) in ca.revoked_serials(rendered.dir)


def test_unknown_student(rendered):
    for cmd in (["client", "revoke", "nobody"], ["verify", "--as", "nobody"]):
        result = run(*cmd, *rendered.args())
        assert result.exit_code == 2 and "no student named 'nobody'" in result.output, result.output
    assert run("verify", "--scenario", "revoked", *rendered.args()).exit_code == 2


def test_revoking_twice(rendered):
    ok(run("client", "add", "ivy", *rendered.args()))
    ok(run("client", "revoke", "ivy", *rendered.args()))
    result = run("client", "revoke", "ivy", *rendered.args())
    assert result.exit_code == 2 and "already revoked" in result.output


def test_crl_renewed_before_it_runs_out(rendered):
    before = ca.crl_next_update(rendered.dir)
    assert before - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=layout.CRL_RENEW_DAYS)
    assert not ca.ensure_fresh_crl(rendered.dir)
    assert ca.ensure_fresh_crl(rendered.dir, now=before - dt.timedelta(days=5))
    assert ca.crl_next_update(rendered.dir) >= before


def test_certs_shows_the_whole_pki(rendered):
    ok(run("client", "add", "jo", *rendered.args()))
    data = {c["file"]: c for c in json.loads(ok(run("certs", "--json", *rendered.args())).stdout)}
    assert {"certs/server-ca.crt", "certs/client-ca.crt", "certs/server.crt", "certs/client.crt",
            "demo-certs/expired-client.crt", "clients/jo/jo.crt"} <= set(data)
    server = data["certs/server.crt"]
    assert "DNS:localhost" in server["sans"] and server["extended_key_usage"] == ["serverAuth"]
    assert len(server["sha256"]) == 95 and server["issuer"] == data["certs/server-ca.crt"]["subject"]
    assert data["clients/jo/jo.crt"]["subject"].startswith("CN=jo,")
    table = ok(run("certs", *rendered.args()))
    assert "clients/jo/jo.crt" in table.output and "sha-256" in table.output
    # The server CA's name constraints are shown: it may vouch for the lab's server names only.
    assert data["certs/server-ca.crt"]["name_constraints"][:1] == ["DNS:localhost"]
    assert "may vouch for   DNS:localhost, IP:127.0.0.1/32, IP:::1/128" in table.output


def test_certs_warns_before_expiry(lab_params):
    lab = lab_params()
    ok(run("render", *lab.args("--image", lab.image, "--days", "20")))
    result = ok(run("certs", *lab.args()))
    assert "warning: certs/server.crt expires in 19 days" in result.output or \
        "warning: certs/server.crt expires in 20 days" in result.output


@pytest.mark.faults
def test_regenerate_says_which_students_need_new_certificates(rendered):
    ok(run("client", "add", "kim", "lee", *rendered.args()))
    before = sorted(p.name for p in (rendered.dir / "clients").iterdir())
    refused = run("render", "--regenerate", *rendered.args())
    assert refused.exit_code == 2 and "would delete the certificates of 2 student(s): kim, lee" in refused.output
    assert "--discard-students" in refused.output
    assert sorted(p.name for p in (rendered.dir / "clients").iterdir()) == before   # nothing lost
    result = ok(run("render", "--regenerate", "--discard-students", *rendered.args()))
    assert "the certificates of kim lee were signed by the old client CA" in result.output
    assert "lab client add kim lee" in result.output
    assert not (rendered.dir / "clients").exists()


def test_revoke_interrupted_before_its_crl_is_finished_by_the_next_revoke(rendered):
    """openssl ca recorded the revocation but the CRL was never written: revoking again completes it."""
    ok(run("client", "add", "max", *rendered.args()))
    certs = rendered.dir / "certs"
    subprocess.run(["openssl", "ca", "-config", "client-ca-db/ca.cnf", "-revoke",
                    str(rendered.dir / "clients" / "max" / "max.crt")], cwd=certs, check=True, capture_output=True)
    # The CA database is the authority: max is revoked, though the CRL does not say so yet.
    assert {c.name: c.status for c in students.list_students(rendered.dir)} == {"max": "revoked"}
    serial = int(students.find(rendered.dir, "max").serial, 16)
    crl = x509.load_pem_x509_crl((rendered.dir / "crl" / "client-ca.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is None
    ok(run("client", "revoke", "max", *rendered.args()))
    crl = x509.load_pem_x509_crl((rendered.dir / "crl" / "client-ca.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    again = run("client", "revoke", "max", *rendered.args())
    assert again.exit_code == 2 and "already revoked" in again.output


@pytest.mark.faults
def test_missing_or_corrupt_crl_is_made_again_from_the_database(rendered):
    """No student lost, no revocation forgotten: lab render (and up) rebuild the CRL from the CA database."""
    ok(run("client", "add", "amy", "ben", *rendered.args()))
    ok(run("client", "revoke", "ben", *rendered.args()))
    crl_file = rendered.dir / "crl" / "client-ca.crl"
    for damage in ("missing", "corrupt"):
        if damage == "missing":
            crl_file.unlink()
        else:
            crl_file.write_text("-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
        listed = json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)
        assert {c["name"]: c["status"] for c in listed} == {"amy": "valid", "ben": "revoked"}
        ok(run("render", *rendered.args()))
        crl = x509.load_pem_x509_crl(crl_file.read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(int(students.find(rendered.dir, "ben").serial, 16))
        assert sorted(p.name for p in (rendered.dir / "clients").iterdir()) == ["amy", "ben"]


@pytest.mark.faults
def test_no_password_on_the_projector(rendered):
    """lab client add never prints a .p12 password unless asked for."""
    quiet = ok(run("client", "add", "pat", "quinn", *rendered.args()))
    for student in ("pat", "quinn"):
        password = (rendered.dir / "passwords" / f"{student}.p12.password").read_text()
        assert password not in quiet.output
    assert "not shown (--show-passwords shows them)" in quiet.output
    shown = ok(run("client", "add", "rae", "--show-passwords", *rendered.args()))
    assert (rendered.dir / "passwords" / "rae.p12.password").read_text() in shown.output
    assert "password" not in (rendered.dir / "clients" / "rae" / "README.txt").read_text().split("instructor")[0] \
        .replace("its password", "")


@pytest.mark.docker
@pytest.mark.faults
def test_revoke_says_the_truth_on_a_stopped_server_and_with_a_damaged_certificate(new_lab, docker_client):
    """Revoking on a stopped server said "still does not refuse bob" (exit 3) though the revocation was
    recorded and is enforced at start; with a truncated certificate, "ERROR: [SSL] PEM lib" after succeeding.
    And `lab up` after a revoke on a paused server said "nothing to do" though it reloaded."""
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "bob", "cyd", "dee", *lab.args()))
    docker_client.containers.get(f"{lab.name}-mtls").stop(timeout=2)
    stopped = ok(run("client", "revoke", "bob", *lab.args()))
    assert "the next `lab up` uses the new CRL" in stopped.output
    ok(run("up", *lab.args()))
    crt = lab.dir / "clients" / "cyd" / "cyd.crt"
    crt.write_text(crt.read_text()[:200])                       # truncated
    damaged = ok(run("client", "revoke", "cyd", *lab.args()))
    assert "cyd.crt" in damaged.output and "cannot be read" in damaged.output and "PEM lib" not in damaged.output
    container = docker_client.containers.get(f"{lab.name}-mtls")
    container.pause()
    try:
        paused = run("client", "revoke", "dee", *lab.args())
        assert paused.exit_code == 6 and "paused" in paused.output
    finally:
        container.unpause()
    again = ok(run("up", *lab.args()))
    assert "nothing to do" not in again.output and "brought up to its files" in again.output
    assert "reloaded      the mtls server" in again.output
    refused = {r["shows"].split("'")[0]: r["passed"] for r in
               json.loads(run("verify", "--json", *lab.args()).stdout) if r["scenario"] == "revoked"}
    assert refused.get("bob") and refused.get("dee")


def test_new_cas_take_the_old_students_passwords_and_handouts_with_them(rendered):
    ok(run("client", "add", "eve", *rendered.args()))
    ok(run("handout", "--all", *rendered.args()))
    assert (rendered.dir / "passwords" / "eve.p12.password").is_file()
    ok(run("render", "--regenerate", "--discard-students", *rendered.args()))
    assert not (rendered.dir / "passwords").exists() and not (rendered.dir / "handouts").exists()


def test_a_student_made_by_mistake_is_removed(rendered):
    """There was no way to remove a student made by mistake: revoked, then forgotten (folder, password,
    handout, sheet row); the CA database keeps the record; without a terminal it asks for --yes."""
    import csv

    from lab.pki import ca

    no_engine = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    ok(run("client", "add", "ann", "typo", *rendered.args()))
    ok(run("handout", "--all", *rendered.args()))
    asked = run("client", "remove", "typo", *rendered.args(), env=no_engine)
    assert asked.exit_code == 2 and "--yes" in asked.output and (rendered.dir / "clients" / "typo").is_dir()
    result = ok(run("client", "remove", "typo", "--yes", *rendered.args(), env=no_engine))
    assert "revoked typo" in result.output and "removed typo" in result.output
    assert not (rendered.dir / "clients" / "typo").exists()
    assert not (rendered.dir / "passwords" / "typo.p12.password").exists()
    assert not (rendered.dir / "handouts" / "typo.zip").exists()
    rows = {r["name"] for r in csv.DictReader((rendered.dir / "passwords" / "roster.csv").open())}
    assert rows == {"ann"}
    assert {r.login: r.status for r in ca.ca_records(rendered.dir)}["typo"] == "R"
    listed = json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)
    assert [s["name"] for s in listed] == ["ann"]
