"""Why a scenario of `lab verify` did not behave: what the observed outcome
means, and the likely cause in the lab's configuration.

Read from what the request saw (lab/teach/verify.py's Observation) and from the
files in the lab directory (the servers' nginx.conf, the server
certificate), never from the container: a student who edits a file and
reloads sees the explanation of their own edit. Each rule is tested by
making that very edit (tests/test_diagnose.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core import layout
from lab.core.layout import Server

if TYPE_CHECKING:
    from lab.teach.verify import Observation, Scenario


def directive(conf: str, name: str) -> str | None:
    """The value of the first `name …;` directive that is not commented out, or None."""
    m = re.search(rf"^\s*{re.escape(name)}\s+([^;#]+);", conf, re.M)
    return m.group(1).strip() if m else None


def _conf(lab_dir: Path, server: Server) -> tuple[str, str]:
    rel = f"{layout.SERVERS[server][0]}/{layout.NGINX_CONF}"
    try:
        return rel, (lab_dir / rel).read_text(errors="replace")
    except OSError:
        return rel, ""


def _in_lab(path: str | None, server: Server | None = None) -> str:
    """A container path of nginx.conf as the lab directory names it."""
    return layout.lab_paths(path, server) if path else "?"


def _certificate_names(lab_dir: Path, conf: str, server: Server) -> tuple[str, list[str]]:
    """The server certificate nginx is told to use (as a lab path) and the names it covers."""
    from lab.pki.certs import server_sans

    path = directive(conf, "ssl_certificate") or ""
    folder = layout.SERVERS[server][0]
    local: Path | None = None
    if path.startswith(layout.CONTAINER_CONF_DIR + "/"):
        local = lab_dir / folder / path[len(layout.CONTAINER_CONF_DIR) + 1:]
    elif path.startswith(layout.CONTAINER_CERT_DIR + "/"):
        local = layout.certs_dir(lab_dir) / path[len(layout.CONTAINER_CERT_DIR) + 1:]
    shown = str(local.relative_to(lab_dir)) if local else path
    try:
        from cryptography import x509

        if local is None:
            return shown, []
        cert = x509.load_pem_x509_certificate(local.read_bytes())
        return shown, [n.split(":", 1)[1] for n in server_sans(cert)]
    except (OSError, ValueError, AttributeError):
        return shown, []


@dataclass(frozen=True)
class Seen:
    """What a rule reads: the scenario, what its request observed, and the server's nginx.conf."""

    scenario: Scenario
    obs: Observation
    lab_dir: Path
    rel: str            # the server's nginx.conf, as the lab directory names it
    conf: str           # its text

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def reason(self) -> str:
        return self.obs.reason.lower()

    @property
    def verdict(self) -> str:
        return self.obs.client_verify or ""

    def directive(self, name: str) -> str | None:
        return directive(self.conf, name)

    def verify_client(self) -> str:
        found = self.directive("ssl_verify_client")
        return f"`{found}`" if found else "not set"

    def foreign_client_ca(self) -> str | None:
        """ssl_client_certificate, when it is not the lab's client CA."""
        found = self.directive("ssl_client_certificate")
        return found if found and found != f"{layout.CONTAINER_CERT_DIR}/{layout.CLIENT_CA_CRT}" else None

    def intermediates(self) -> int:
        """How many CA certificates the client sent above its own (the chain in its certificate file)."""
        if not self.scenario.client_cert:
            return 0
        try:
            text = (self.lab_dir / self.scenario.client_cert[0]).read_text(errors="replace")
        except OSError:
            return 0
        return max(0, text.count("-----BEGIN CERTIFICATE-----") - 1)

    def depth(self) -> int:
        found = self.directive("ssl_verify_depth")
        return int(found) if found and found.isdigit() else 1      # nginx's default is 1

    def certificate(self) -> tuple[str, list[str]]:
        return _certificate_names(self.lab_dir, self.conf, self.scenario.server)


Rule = tuple[Callable[[Seen], object], Callable[[Seen], str]]
_MUST_CONNECT = ("trusted", "insecure", "client-cert")
_REFUSALS = ("rogue-ca", "expired", "wrong-purpose", "revoked")


def _handshake_failed(s: Seen) -> bool:
    return s.name in _MUST_CONNECT and s.obs.kind == "tls-error"


def _mtls_http(s: Seen) -> bool:
    return s.scenario.server == "mtls" and s.obs.kind == "http"


def _admitted(s: Seen) -> bool:
    """A certificate the lesson refuses got the page."""
    return _mtls_http(s) and s.name in _REFUSALS and s.obs.status == 200


def _lab_cert_refused(s: Seen) -> bool:
    return _mtls_http(s) and s.name == "client-cert" and s.obs.status == 400


def _revoked(s: Seen) -> str:
    cert = s.scenario.client_cert[0] if s.scenario.client_cert else ""
    if cert == f"{layout.CERTS_DIR}/{layout.CLIENT_CRT}":
        return "the lab's own client certificate is revoked: lab up --regenerate makes a new set"
    return (f"the CRL the server loaded lists {cert} as revoked, a verdict for good: is it revoked in the client "
            f"CA's database too? (openssl crl -in {layout.CRL_DIR}/{layout.CRL_FILE} -noout -text)")


def _refused_otherwise(s: Seen) -> bool:
    """Refused, as the lesson says, but with another verdict than the lesson's."""
    return (_mtls_http(s) and s.name in _REFUSALS and s.obs.status == 400
            and s.scenario.expect.client_verify not in s.verdict)


def _names(s: Seen) -> str:
    shown, names = s.certificate()
    return f"{shown} covers {', '.join(names) or 'no name'}"


# The rules, in order: the first whose condition holds explains the row (one or two sentences: what the
# outcome means, and where to look). Each is tested by making the edit it names (tests/test_diagnose.py).
RULES: list[Rule] = [
    (lambda s: s.obs.kind == "connect-error",
     lambda s: f"nothing answered on {s.obs.address}: the {s.scenario.server} server is not running or not "
               "published there (lab status; lab up)"),
    (lambda s: s.obs.kind == "http" and s.obs.status == 404,
     lambda s: f"nginx answered 404: it does not serve /{layout.HELLO_FILE} any more; check the location and "
               f"root directives in {s.rel}"),
    # The client gave up during the handshake.
    (lambda s: _handshake_failed(s) and "hostname mismatch" in s.reason,
     lambda s: f"the client asked for {s.obs.host} and the server certificate does not have that name: "
               f"{_names(s)} (ssl_certificate in {s.rel})"),
    (lambda s: _handshake_failed(s) and any(w in s.reason for w in ("unable to get local issuer", "self-signed",
                                                                     "self signed")),
     lambda s: f"the server presents {s.certificate()[0]}, which the lab's server CA did not sign: the client "
               f"cannot trust it (ssl_certificate in {s.rel})"),
    (lambda s: _handshake_failed(s) and ("protocol" in s.reason or "version" in s.reason),
     lambda s: f"client and server share no TLS version: ssl_protocols in {s.rel} is "
               f"{s.directive('ssl_protocols') or 'not set'}"),
    (lambda s: _handshake_failed(s) and ("cipher" in s.reason or "handshake failure" in s.reason),
     lambda s: f"client and server share no cipher suite: ssl_ciphers in {s.rel} is {s.directive('ssl_ciphers')}"),
    (lambda s: _handshake_failed(s) and ("certificate required" in s.reason or "alert" in s.reason),
     lambda s: f"the server ended the handshake ({s.obs.reason}): see lab logs {s.scenario.server}"),
    # The TLS server's lessons.
    (lambda s: s.name == "untrusted" and s.obs.kind == "http",
     lambda s: "the client trusted the lab's server CA without being told to: this machine's trust store (or "
               "SSL_CERT_FILE) holds it; a student who trusted it in a browser trusts it everywhere"),
    (lambda s: s.name == "wrong-name" and s.obs.kind == "http",
     lambda s: f"the server certificate covers {s.obs.host}: {s.certificate()[0]} has "
               f"{', '.join(s.certificate()[1])}; a certificate should name only the hosts it is for "
               "(lab up --san adds names)"),
    # The mTLS server let in what it should refuse.
    (lambda s: _mtls_http(s) and s.name == "no-cert" and s.obs.status != 400,
     lambda s: f"the server did not require a client certificate: ssl_verify_client is {s.verify_client()}, "
               f"not `on`, in {s.rel}"),
    (lambda s: _admitted(s) and s.directive("ssl_verify_client") != "on",
     lambda s: f"the server let in a certificate it should refuse: ssl_verify_client is {s.verify_client()}, "
               f"not `on`, in {s.rel} (its verdict was {s.obs.client_verify})"),
    (lambda s: _admitted(s) and s.name == "rogue-ca",
     lambda s: f"the server trusts a CA other than the lab's client CA: ssl_client_certificate in {s.rel} "
               f"is {_in_lab(s.directive('ssl_client_certificate'), s.scenario.server)}"),
    (lambda s: _admitted(s) and s.name == "revoked" and not s.directive("ssl_crl"),
     lambda s: f"the server does not check revocations: ssl_crl is not set in {s.rel}"),
    (lambda s: _admitted(s) and s.name == "revoked",
     lambda s: f"the server has not loaded the current revocation list ({_in_lab(s.directive('ssl_crl'), s.scenario.server)}): "
               "lab reload loads it"),
    # The mTLS server refused the lab's own client certificate.
    (lambda s: _lab_cert_refused(s) and s.intermediates() > s.depth(),
     lambda s: f"the client's chain has {s.intermediates()} intermediate CAs and the server accepts "
               f"{s.depth()}: ssl_verify_depth in {s.rel} ({s.verdict})"),
    (lambda s: _lab_cert_refused(s) and ("chain too long" in s.verdict or "depth" in s.verdict),
     lambda s: f"the client's chain is longer than the server accepts: ssl_verify_depth in {s.rel} is "
               f"{s.directive('ssl_verify_depth')} ({s.verdict})"),
    (lambda s: _lab_cert_refused(s) and s.foreign_client_ca(),
     lambda s: f"the server trusts a CA other than the lab's client CA: ssl_client_certificate in {s.rel} "
               f"is {_in_lab(s.foreign_client_ca(), s.scenario.server)} ({s.verdict})"),
    (lambda s: _lab_cert_refused(s) and "crl" in s.verdict.lower(),
     lambda s: f"the server cannot use its revocation list ({s.verdict}): check ssl_crl in {s.rel} and "
               f"{layout.CRL_DIR}/{layout.CRL_FILE} (lab doctor; lab up renews it)"),
    (lambda s: _lab_cert_refused(s) and "revoked" in s.verdict,
     lambda s: _revoked(s)),
    (_lab_cert_refused,
     lambda s: f"the server refused the lab's client certificate: {s.verdict or s.obs.reason} (lab logs mtls)"),
    # Refused, but not for the lesson's reason.
    (lambda s: _refused_otherwise(s) and s.foreign_client_ca(),
     lambda s: f"refused for another reason than the lesson's ({s.obs.client_verify}): the server trusts a CA "
               f"other than the lab's client CA: ssl_client_certificate in {s.rel} is "
               f"{_in_lab(s.foreign_client_ca(), s.scenario.server)}"),
    (_refused_otherwise,
     lambda s: f"refused, but for another reason than the lesson's: the server said {s.obs.client_verify} "
               f"(ssl_verify_depth, ssl_crl and ssl_client_certificate in {s.rel})"),
]


def explain(scenario: Scenario, obs: Observation, lab_dir: Path) -> str:
    """One or two sentences: what the outcome means and where to look (the first rule that holds)."""
    rel, conf = _conf(lab_dir, scenario.server)
    seen = Seen(scenario, obs, lab_dir, rel, conf)
    for holds, say in RULES:
        if holds(seen):
            return say(seen)
    return f"expected {scenario.expect.describe()}; see lab logs {scenario.server} for what the server saw"
