"""Authentication is not authorization: after the server verified a certificate (else 400), it decides
whether that identity may reach the path (else 403, naming the identity and the rule). Identities come
from the client CA's database by issuer and serial. lab deny / lab allow change a student's access live,
no certificate touched. Against real nginx."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest
from helpers import mtls_get as get
from helpers import ok, run


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-access")
    ok(run("client", "add", "alice", "bob", *lab.args()))
    ok(run("client", "add", "--role", "instructor", "Inés Ortiz", *lab.args()))
    return lab


@pytest.mark.docker
def test_the_lessons_rules_by_role(lab):
    assert get(lab, "bob", "/hello-world.txt")[0] == 200
    status, body = get(lab, "bob", "/instructor/")
    assert status == 403 and body.startswith("Forbidden: only the instructor role may reach /instructor/")
    assert "bob:student" in body and "authorization, not authentication" in body
    status, body = get(lab, "ines-ortiz", "/instructor/")
    assert status == 200 and "Inés Ortiz" in body
    for who in ("bob", "ines-ortiz", "lab-client"):
        status, body = get(lab, who, "/admin/")
        assert status == 403 and "no one may reach /admin/ unless allowed by name" in body
    assert get(lab, None, "/instructor/")[0] == 400          # no certificate: authentication refuses first


@pytest.mark.docker
def test_deny_is_not_revoke_and_allow_undoes_it(lab):
    denied = ok(run("deny", "alice", "/hello-world.txt", *lab.args()))
    try:
        assert "alice is refused (HTTP 403) /hello-world.txt" in denied.output and "stays valid" in denied.output
        status, body = get(lab, "alice", "/hello-world.txt")
        assert status == 403 and "alice is denied /hello-world.txt by name" in body and "alice:student" in body
        assert get(lab, "bob", "/hello-world.txt")[0] == 200
        listed = {s["name"]: s["status"] for s in json.loads(ok(run("client", "list", "--json", *lab.args())).stdout)}
        assert listed["alice"] == "valid"                     # denying is not revoking
        table = {a["name"]: a for a in json.loads(ok(run("access", "--json", *lab.args())).stdout)}
        assert table["alice"]["paths"]["/hello-world.txt"] == {"allowed": False,
                                                              "rule": "denied by name (lab deny alice /hello-world.txt)"}
        assert table["ines-ortiz"]["role"] == "instructor" and table["ines-ortiz"]["paths"]["/instructor/"]["allowed"]
    finally:
        ok(run("allow", "alice", "/hello-world.txt", *lab.args()))
    assert get(lab, "alice", "/hello-world.txt")[0] == 200
    # /admin/ for one student by name, then closed again.
    ok(run("allow", "bob", "/admin/", *lab.args()))
    try:
        assert get(lab, "bob", "/admin/")[0] == 200 and get(lab, "alice", "/admin/")[0] == 403
    finally:
        ok(run("deny", "bob", "/admin/", *lab.args()))
    assert get(lab, "bob", "/admin/")[0] == 403


@pytest.mark.docker
def test_verify_shows_the_layer_and_fails_when_the_map_lets_a_student_in(lab):
    results = {r["scenario"]: r for r in json.loads(ok(run("verify", *lab.args("--json"))).stdout)}
    assert results["forbidden"]["passed"] and results["forbidden"]["layer"] == "authorization"
    assert results["no-cert"]["layer"] == "authentication" and results["client-cert"]["layer"] == "served"
    assert results["wrong-purpose"]["layer"] == "authentication"
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    lesson = conf.read_text()
    conf.write_text(lesson.replace('"~^[^ ]* /instructor/" "only the instructor role may reach /instructor/";',
                                   '"~^[^ ]* /instructor/" "";'))
    try:
        ok(run("reload", "mtls", *lab.args()))
        broken = run("verify", "forbidden", *lab.args())
        assert broken.exit_code == 1 and "forbidden" in broken.output and "HTTP 200" in broken.output
    finally:
        ok(run("reset", *lab.args()))


def test_bad_access_requests_are_refused(rendered):
    ok(run("client", "add", "cy", "dee", *rendered.args()))
    ok(run("client", "revoke", "dee", *rendered.args()))
    for args, says in ((("deny", "cy", "/secret/"), "no rule for '/secret/'"),
                       (("deny", "nobody", "/admin/"), "no student named 'nobody'"),
                       (("allow", "dee", "/admin/"), "dee's certificate is revoked")):
        result = run(*args, *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
        assert result.exit_code == 2 and says in result.output, result.output
    assert not (rendered.dir / "access.yml").exists()
    assert run("client", "add", "--role", "admin", "eve", *rendered.args()).exit_code == 2


@pytest.mark.docker
def test_handshake_and_whoami_show_who_the_server_authorized(lab):
    forbidden = json.loads(ok(run("handshake", "forbidden", *lab.args("--json"))).stdout)
    assert forbidden["http_status"] == 403 and forbidden["identity"] == "lab-client:student"
    ines = json.loads(ok(run("handshake", "--as", "Inés Ortiz", *lab.args("--json"))).stdout)
    assert ines["http_status"] == 200 and ines["identity"] == "ines-ortiz:instructor"
    status, body = get(lab, "ines-ortiz", "/whoami")
    assert status == 200 and "identity (by issuer and serial, for authorization): ines-ortiz:instructor" in body


def test_rules_survive_a_stopped_engine_and_a_damaged_file_and_go_with_the_student(rendered):
    """lab deny with no engine and nothing serving the lab: the rule is written, in force when the lab starts.
    A damaged access.yml is named, never guessed at. A student removed takes their rules along."""
    no_engine = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    ok(run("client", "add", "fay", "gil", *rendered.args()))
    denied = ok(run("deny", "fay", "/hello-world.txt", *rendered.args(), env=no_engine))
    assert "the rule applies when it starts" in denied.output
    rules = (rendered.dir / "crl" / "access.map").read_text()
    assert "fay is denied /hello-world.txt" in rules
    (rendered.dir / "access.yml").write_text("deny: [not, a, mapping\n")
    broken = run("access", *rendered.args(), env=no_engine)
    assert broken.exit_code == 2 and "access.yml is not valid YAML" in broken.output
    (rendered.dir / "access.yml").write_text("deny:\n  fay: [/hello-world.txt]\n")
    removed = ok(run("client", "remove", "fay", "--yes", *rendered.args(), env=no_engine))
    assert "access.yml (fay's rules)" in removed.output
    assert "fay" not in (rendered.dir / "crl" / "access.map").read_text()


@pytest.mark.docker
def test_the_same_subject_from_another_trusted_ca_is_not_the_instructor(lab, tmp_path):
    """A check on the subject alone is fooled by the same name from another CA the server also trusts. Here a
    second CA makes a certificate with Inés's very subject (OU=instructor, UID, CN); the server trusts it
    (authentication passes) but knows identities by issuer and serial: /instructor/ refuses it, while the
    real Inés gets in. The subjects the server saw are the same string: a subject map could not tell them."""
    import subprocess

    from lab.pki import ca

    other = tmp_path / "other"
    other.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=other, check=True, capture_output=True)

    (other / "ext.cnf").write_text("[ca_ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, "
                                   "cRLSign\n[leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, "
                                   "digitalSignature\nextendedKeyUsage = clientAuth\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-subj", "/O=elsewhere/CN=another school CA", "-config", "ext.cnf",
            "-extensions", "ca_ext", "-out", "ca.crt")
    real = ca.load_cert(lab.dir / "clients" / "ines-ortiz" / "ines-ortiz.crt")
    subject = "".join(f"/{a.rfc4514_attribute_name}={a.value}" for a in real.subject)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "fake.key",
            "-utf8", "-subj", subject, "-out", "fake.csr")
    openssl("x509", "-req", "-in", "fake.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "2",
            "-set_serial", str(real.serial_number), "-extfile", "ext.cnf", "-extensions", "leaf", "-out", "fake.crt")
    (other / "ca.cnf").write_text("[ca]\ndefault_ca = o\n[o]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                                  "certificate = ca.crt\nprivate_key = ca.key\ndefault_md = sha256\n"
                                  "default_crl_days = 2\n")
    (other / "index.txt").write_text("")
    (other / "crlnumber").write_text("1000\n")
    openssl("ca", "-gencrl", "-config", "ca.cnf", "-out", "ca.crl")
    # The server now trusts the lab's client CA and the other one (and has the other's CRL).
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    lesson = conf.read_text()
    bundle = lab.dir / "nginx-mtls" / "client-cas.crt"
    bundle.write_bytes((lab.dir / "certs" / "client-ca.crt").read_bytes() + (other / "ca.crt").read_bytes())
    crl = lab.dir / "crl" / "client-ca.crl"
    crl.write_bytes(crl.read_bytes() + (other / "ca.crl").read_bytes())
    conf.write_text(lesson.replace("ssl_client_certificate /etc/nginx/certificates/client-ca.crt;",
                                   "ssl_client_certificate /etc/nginx/lab/client-cas.crt;"))
    try:
        ok(run("reload", "mtls", *lab.args()))

        def ask(cert: str, key: str, path: str) -> tuple[int, str, str]:
            ctx = ssl.create_default_context(cafile=str(lab.dir / "certs" / "server-ca.crt"))
            ctx.load_cert_chain(cert, key)
            conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                return resp.status, resp.getheader("X-Client-Subject") or "", resp.getheader("X-Lab-Identity") or ""
            finally:
                conn.close()

        folder = lab.dir / "clients" / "ines-ortiz"
        genuine = ask(str(folder / "ines-ortiz.crt"), str(folder / "ines-ortiz.key"), "/instructor/")
        forged = ask(str(other / "fake.crt"), str(other / "fake.key"), "/instructor/")
        assert genuine[0] == 200 and genuine[2] == "ines-ortiz:instructor"
        assert forged[0] == 403 and forged[2] == ""                 # authenticated, and nobody the lab knows
        assert forged[1] == genuine[1] and "OU=instructor" in forged[1] and "UID=ines-ortiz" in forged[1]
        assert ask(str(other / "fake.crt"), str(other / "fake.key"), "/hello-world.txt")[0] == 200   # any valid
    finally:
        conf.write_text(lesson)
        bundle.unlink(missing_ok=True)
        ca.write_crl(lab.dir)
        ok(run("reload", "mtls", *lab.args()))


@pytest.mark.docker
def test_a_students_spiffe_id_is_in_their_certificate_and_the_handshake(lab):
    """An identity beyond the CN: the one URI SAN, spiffe://LAB/ROLE/LOGIN, as service meshes use it."""
    from cryptography import x509

    from lab.pki import ca

    cert = ca.load_cert(lab.dir / "clients" / "ines-ortiz" / "ines-ortiz.crt")
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert uris == [f"spiffe://{lab.name}/instructor/ines-ortiz"]
    seen = json.loads(ok(run("handshake", "--as", "ines-ortiz", *lab.args("--json"))).stdout)
    client = next(m for m in seen["messages"] if m["type"] == "Certificate" and m["from"] == "client")
    assert client["spiffe_id"] == f"spiffe://{lab.name}/instructor/ines-ortiz"
    assert f"spiffe://{lab.name}/instructor/ines-ortiz" in ok(run("handshake", "--as", "ines-ortiz", *lab.args())).output


def test_a_link_in_place_of_a_derived_map_stops_everything_before_the_ca_issues(rendered, tmp_path):
    """crl/access.map planted as a link: lab deny refused it, but lab client add issued the student first and
    failed after (a student issued, the command saying it failed). Now nothing is issued, nothing written."""
    from lab.pki import ca

    no_engine = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    ok(run("client", "add", "ann", *rendered.args(), env=no_engine))
    target = tmp_path / "someone-elses.txt"
    target.write_text("mine\n")
    link = rendered.dir / "crl" / "access.map"
    link.unlink()
    link.symlink_to(target)
    before = ca.ca_records(rendered.dir)
    for args in (("client", "add", "bob"), ("deny", "ann", "/admin/")):
        result = run(*args, *rendered.args(), env=no_engine)
        assert result.exit_code == 3 and "is a symbolic link" in result.output, result.output
    assert ca.ca_records(rendered.dir) == before and not (rendered.dir / "clients" / "bob").exists()
    assert target.read_text() == "mine\n"


@pytest.mark.docker
def test_a_map_on_the_name_would_have_let_the_partners_impostor_in(lab):
    """The lesson's proof, both ways: with the map keyed on issuer and serial the partner CA's impostor (the
    instructor's subject, serial and SPIFFE ID) is refused /instructor/; with the same map keyed on the common
    name (exercise cn-only-rule makes that mistake for real) the very same certificate gets in."""
    def impostor() -> dict:
        result = run("verify", "same-cn-other-ca", *lab.args("--json"))
        return json.loads(result.stdout)[0]

    lesson = impostor()
    assert lesson["passed"] and lesson["layer"] == "authorization" and lesson["detail"]["identity"] == ""
    ok(run("exercise", "start", "cn-only-rule", *lab.args()))
    try:
        fooled = impostor()
        assert not fooled["passed"] and fooled["detail"]["status"] == 200 and fooled["layer"] == "served"
        assert "the instructors' page" in fooled["observed"]
        assert fooled["detail"]["client_subject"] == lesson["detail"]["client_subject"]
    finally:
        ok(run("exercise", "reset", *lab.args()))
    assert impostor()["passed"]
