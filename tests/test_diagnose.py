"""`lab verify` explains a broken lesson: for each scenario, the very edit a
student might make, and the cause the failing row names."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import ok, run

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-diagnose")
    ok(run("client", "add", "rey", *lab.args()))
    ok(run("client", "revoke", "rey", *lab.args()))
    return lab


def edited(lab, server: str, old: str, new: str):
    """Make one edit to a server's nginx.conf and load it; the test gets the verify rows; then back to the lesson."""
    conf = lab.dir / f"nginx-{server}" / "nginx.conf"
    text = conf.read_text()
    assert old in text, old
    conf.write_text(text.replace(old, new))
    ok(run("reload", server, *lab.args()))
    return {r["scenario"]: r for r in json.loads(run("verify", *lab.args("--json")).stdout)}


@pytest.fixture(autouse=True)
def back_to_the_lesson(lab):
    yield
    ok(run("reset", *lab.args()))
    for extra in (lab.dir / "nginx-tls").glob("other*"):
        extra.unlink()
    for extra in (lab.dir / "nginx-mtls").glob("rogue*"):
        extra.unlink()


def test_no_cert_answered_200_names_ssl_verify_client(lab):
    rows = edited(lab, "mtls", "ssl_verify_client on;", "ssl_verify_client optional;")
    assert not rows["no-cert"]["passed"]
    assert rows["no-cert"]["cause"] == ("the server did not require a client certificate: ssl_verify_client is "
                                        "`optional`, not `on`, in nginx-mtls/nginx.conf")
    assert rows["client-cert"]["passed"] and rows["rogue-ca"]["passed"]


@pytest.mark.parametrize("scenario", ["rogue-ca", "expired", "wrong-purpose", "revoked"])
def test_a_refused_certificate_let_in_names_ssl_verify_client_off(lab, scenario):
    rows = edited(lab, "mtls", "ssl_verify_client on;", "ssl_verify_client off;")
    row = rows[scenario]
    assert not row["passed"] and row["detail"]["status"] == 200
    assert "ssl_verify_client is `off`, not `on`, in nginx-mtls/nginx.conf" in row["cause"]


def test_optional_no_ca_lets_in_a_certificate_from_an_unknown_ca(lab):
    rows = edited(lab, "mtls", "ssl_verify_client on;", "ssl_verify_client optional_no_ca;")
    row = rows["rogue-ca"]
    assert not row["passed"] and row["detail"]["status"] == 200
    assert "ssl_verify_client is `optional_no_ca`, not `on`, in nginx-mtls/nginx.conf" in row["cause"]
    assert rows["expired"]["passed"]      # nginx still refuses what it can verify and finds bad


def test_rogue_ca_let_in_names_the_ca_the_server_trusts(lab):
    import shutil

    shutil.copy(lab.dir / "demo-certs" / "rogue-ca.crt", lab.dir / "nginx-mtls" / "rogue-ca.crt")
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_crl /etc/nginx/crl/client-ca.crl;", ""))  # no CRL of the rogue CA
    rows = edited(lab, "mtls", "ssl_client_certificate /etc/nginx/certificates/client-ca.crt;",
                  "ssl_client_certificate /etc/nginx/lab/rogue-ca.crt;")
    assert not rows["rogue-ca"]["passed"]
    assert rows["rogue-ca"]["cause"] == ("the server trusts a CA other than the lab's client CA: "
                                         "ssl_client_certificate in nginx-mtls/nginx.conf is nginx-mtls/rogue-ca.crt")
    assert not rows["client-cert"]["passed"]
    assert "trusts a CA other than the lab's client CA" in rows["client-cert"]["cause"]


def test_client_cert_refused_names_the_wrong_ca(lab):
    rows = edited(lab, "mtls", "ssl_client_certificate /etc/nginx/certificates/client-ca.crt;",
                  "ssl_client_certificate /etc/nginx/certificates/server-ca.crt;")
    row = rows["client-cert"]
    assert not row["passed"]
    assert row["cause"].startswith("the server trusts a CA other than the lab's client CA: ssl_client_certificate in "
                                   "nginx-mtls/nginx.conf is certs/server-ca.crt")


def test_revoked_let_in_names_ssl_crl(lab):
    rows = edited(lab, "mtls", "ssl_crl /etc/nginx/crl/client-ca.crl;", "")
    assert not rows["revoked"]["passed"]
    assert rows["revoked"]["cause"] == "the server does not check revocations: ssl_crl is not set in nginx-mtls/nginx.conf"


def test_trusted_with_a_certificate_without_the_name(lab):
    certs, folder = lab.dir / "certs", lab.dir / "nginx-tls"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(folder / "other.key"), "-subj", "/CN=other.test", "-out", str(folder / "other.csr")],
                   check=True, capture_output=True)
    ext = folder / "other.ext"
    ext.write_text("subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
                   "basicConstraints=critical,CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(folder / "other.csr"), "-CA", str(certs / "server-ca.crt"),
                    "-CAkey", str(certs / "server-ca.key"), "-set_serial", "4242", "-days", "30",
                    "-extfile", str(ext), "-out", str(folder / "other.crt")], check=True, capture_output=True)
    conf = folder / "nginx.conf"
    conf.write_text(conf.read_text().replace("/etc/nginx/certificates/server.key", "/etc/nginx/lab/other.key"))
    rows = edited(lab, "tls", "ssl_certificate /etc/nginx/certificates/server.crt;",
                  "ssl_certificate /etc/nginx/lab/other.crt;")
    row = rows["trusted"]
    assert not row["passed"] and row["detail"]["kind"] == "tls-error"
    assert row["cause"] == ("the client asked for localhost and the server certificate does not have that name: "
                            "nginx-tls/other.crt covers other.test (ssl_certificate in nginx-tls/nginx.conf)")


def test_trusted_and_insecure_get_404_names_the_location(lab):
    rows = edited(lab, "tls", "location = /hello-world.txt {", "location = /hello.txt {")
    for name in ("trusted", "insecure"):
        assert not rows[name]["passed"]
        assert rows[name]["cause"].startswith("nginx answered 404: it does not serve /hello-world.txt any more; check "
                                              "the location and root directives in nginx-tls/nginx.conf")


def test_untrusted_accepted_names_the_trust_store(lab):
    result = run("verify", *lab.args("--json", "--scenario", "untrusted"),
                 env={"SSL_CERT_FILE": str(lab.dir / "certs" / "server-ca.crt")})
    row = json.loads(result.stdout)[0]
    assert not row["passed"] and "this machine's trust store (or SSL_CERT_FILE) holds it" in row["cause"]


def test_a_lab_that_is_down(lab, docker_client):
    docker_client.containers.get(f"{lab.name}-tls").stop(timeout=1)
    try:
        rows = {r["scenario"]: r for r in json.loads(run("verify", *lab.args("--json")).stdout)}
        assert "nothing answered on 127.0.0.1:" in rows["trusted"]["cause"] and "lab up" in rows["trusted"]["cause"]
        table = run("verify", *lab.args())
        assert "→ nothing answered on" in table.output
    finally:
        ok(run("up", *lab.args()))


def test_wrong_name_accepted_names_the_extra_name(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args("--san", "wrong-name.invalid")))
    row = json.loads(run("verify", *lab.args("--json", "--scenario", "wrong-name")).stdout)[0]
    assert not row["passed"]
    assert row["cause"].startswith("the server certificate covers wrong-name.invalid: certs/server.crt has localhost, "
                                   "wrong-name.invalid, 127.0.0.1, ::1")
