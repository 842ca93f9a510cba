"""Pages that explain: /whoami for curl and for browsers, a refused client told why, no favicon noise,
a revoked student's README. Against real nginx."""

from __future__ import annotations

import http.client
import ssl

import pytest

from helpers import ok, run

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-pages")
    ok(run("client", "add", "wes", "xia", *lab.args()))
    ok(run("client", "revoke", "xia", *lab.args()))
    return lab


def get(lab, path: str, cert: tuple[str, str] | None, accept: str = "*/*") -> tuple[int, str, str]:
    ctx = ssl.create_default_context(cafile=str(lab.dir / "certs" / "server-ca.crt"))
    if cert:
        ctx.load_cert_chain(str(lab.dir / cert[0]), str(lab.dir / cert[1]))
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


WES = ("clients/wes/wes.crt", "clients/wes/wes.key")
HTML = "text/html,application/xhtml+xml,*/*;q=0.8"


def test_whoami_text_for_curl_and_a_page_for_browsers(lab):
    status, kind, body = get(lab, "/whoami", WES)
    assert status == 200 and kind.startswith("text/plain") and body.startswith("Hello, wes!")
    for line in ("subject: CN=wes,", "issuer: CN=", "serial: ", "valid until: ", "connection: TLSv1.3, "):
        assert line in body, body
    status, kind, page = get(lab, "/whoami", WES, HTML)
    assert status == 200 and kind.startswith("text/html")
    assert "<h1>Hello, wes!</h1>" in page and "SUCCESS" in page and "TLSv1.3" in page


@pytest.mark.parametrize("who,accept,says", [
    (None, "*/*", "your client sent none"),
    (None, HTML, "it sent none"),
    (("clients/xia/xia.crt", "clients/xia/xia.key"), "*/*", "it has been revoked: ask the instructor for a new one"),
    (("clients/xia/xia.crt", "clients/xia/xia.key"), HTML, "<b>it has been revoked"),
    (("demo-certs/expired-client.crt", "demo-certs/expired-client.key"), "*/*", "it has expired"),
    (("demo-certs/rogue-client.crt", "demo-certs/rogue-client.key"), "*/*", "not issued by this lab's client CA"),
    (("demo-certs/wrong-purpose.crt", "demo-certs/wrong-purpose.key"), "*/*", "its purpose is not clientAuth"),
])
def test_a_refused_client_is_told_why(lab, who, accept, says):
    status, kind, body = get(lab, "/hello-world.txt", who, accept)
    assert status == 400 and says in body, body
    assert kind.startswith("text/html" if accept == HTML else "text/plain")


def test_favicon_leaves_no_error_in_the_log(lab, docker_client):
    status, _, _ = get(lab, "/favicon.ico", WES)
    assert status == 204
    logs = docker_client.containers.get(f"{lab.name}-mtls").logs().decode()
    assert "favicon" not in logs


def test_a_revoked_students_readme_says_so(lab):
    readme = (lab.dir / "clients" / "xia" / "README.txt").read_text()
    assert readme.startswith("REVOKED on ") and "no longer works" in readme
    assert not (lab.dir / "clients" / "wes" / "README.txt").read_text().startswith("REVOKED")


def test_the_start_page_says_who_you_are_and_what_to_try(lab):
    """`/` with a valid certificate was nginx's bare 404."""
    status, kind, body = get(lab, "/", WES)
    assert status == 200 and kind.startswith("text/plain") and body.startswith("Hello, wes: you are in.")
    assert "/whoami" in body and "/help" in body and "/hello-world.txt" in body
    status, kind, page = get(lab, "/", WES, HTML)
    assert status == 200 and kind.startswith("text/html") and '<a href="/help">/help</a>' in page
    status, _, body = get(lab, "/", None)            # without a certificate: refused, and told why
    assert status == 400 and "your client sent none" in body
    status, _, _ = get(lab, "/nothing-here", WES)
    assert status == 404


@pytest.mark.parametrize("who", [None, WES, ("clients/xia/xia.crt", "clients/xia/xia.key"),
                                 ("demo-certs/rogue-client.crt", "demo-certs/rogue-client.key")])
def test_help_answers_with_any_certificate_or_none(lab, who):
    """/help explains the errors students actually meet (the browser's words, the cause, the fix); a student
    without a working certificate needs it most."""
    status, kind, body = get(lab, "/help", who)
    assert status == 200 and kind.startswith("text/plain") and "charset=utf-8" in kind, (status, body[:200])
    for words in ("NET::ERR_CERT_AUTHORITY_INVALID", "SEC_ERROR_UNKNOWN_ISSUER", "No required SSL certificate was sent",
                  "NAME-legacy.p12", "--cert-type P12", "Could not resolve host", f"{lab.mtls_port} for this server",
                  "ERR_BAD_SSL_CLIENT_AUTH_CERT", "localhost, 127.0.0.1"):
        assert words in body, words
    prose = [line for line in body.splitlines() if not line.startswith("     ")]   # a message quoted is kept whole
    assert all(len(line) <= 80 for line in prose), max(prose, key=len)
    status, kind, page = get(lab, "/help", who, HTML)
    assert status == 200 and kind.startswith("text/html") and "<h2>The browser says the connection is not private</h2>" in page
