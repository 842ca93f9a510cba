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
from pathlib import Path

from lab.core import layout
from lab.core.layout import Server


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


def explain(scenario, obs, lab_dir: Path) -> str:
    """One or two sentences: what the outcome means and where to look. "" when the scenario passed."""
    rel, conf = _conf(lab_dir, scenario.server)
    name = scenario.name
    if obs.kind == "connect-error":
        return (f"nothing answered on {obs.address}: the {scenario.server} server is not running or not "
                "published there (lab status; lab up)")
    if obs.kind == "http" and obs.status == 404:
        return (f"nginx answered 404: it does not serve /{layout.HELLO_FILE} any more; check the location and "
                f"root directives in {rel}")
    verify_client = directive(conf, "ssl_verify_client")
    client_ca = directive(conf, "ssl_client_certificate")
    lab_client_ca = f"{layout.CONTAINER_CERT_DIR}/{layout.CLIENT_CA_CRT}"

    if name in ("trusted", "insecure", "client-cert") and obs.kind == "tls-error":
        reason = obs.reason.lower()
        if "hostname mismatch" in reason:
            shown, names = _certificate_names(lab_dir, conf, scenario.server)
            return (f"the client asked for {obs.host} and the server certificate does not have that name: "
                    f"{shown} covers {', '.join(names) or 'no name'} (ssl_certificate in {rel})")
        if "unable to get local issuer" in reason or "self-signed" in reason or "self signed" in reason:
            shown, _ = _certificate_names(lab_dir, conf, scenario.server)
            return (f"the server presents {shown}, which the lab's server CA did not sign: the client cannot "
                    f"trust it (ssl_certificate in {rel})")
        if "protocol" in reason or "version" in reason:
            return (f"client and server share no TLS version: ssl_protocols in {rel} is "
                    f"{directive(conf, 'ssl_protocols') or 'not set'}")
        if "cipher" in reason or "handshake failure" in reason:
            return f"client and server share no cipher suite: ssl_ciphers in {rel} is {directive(conf, 'ssl_ciphers')}"
        if "certificate required" in reason or "alert" in reason:
            return f"the server ended the handshake ({obs.reason}): see lab logs {scenario.server}"

    if name == "untrusted" and obs.kind == "http":
        return ("the client trusted the lab's server CA without being told to: this machine's trust store (or "
                "SSL_CERT_FILE) holds it; a student who trusted it in a browser trusts it everywhere")
    if name == "wrong-name" and obs.kind == "http":
        shown, names = _certificate_names(lab_dir, conf, scenario.server)
        return (f"the server certificate covers {obs.host}: {shown} has {', '.join(names)}; a certificate should "
                "name only the hosts it is for (lab up --san adds names)")

    if scenario.server == "mtls" and obs.kind == "http":
        if name == "no-cert" and obs.status != 400:
            return (f"the server did not require a client certificate: ssl_verify_client is "
                    f"{'`' + verify_client + '`' if verify_client else 'not set'}, not `on`, in {rel}")
        if name in ("rogue-ca", "expired", "wrong-purpose", "revoked") and obs.status == 200:
            if verify_client != "on":
                return (f"the server let in a certificate it should refuse: ssl_verify_client is "
                        f"{'`' + verify_client + '`' if verify_client else 'not set'}, not `on`, in {rel} "
                        f"(its verdict was {obs.client_verify})")
            if name == "rogue-ca":
                return (f"the server trusts a CA other than the lab's client CA: ssl_client_certificate in {rel} "
                        f"is {_in_lab(client_ca)}")
            if name == "revoked":
                crl = directive(conf, "ssl_crl")
                if not crl:
                    return f"the server does not check revocations: ssl_crl is not set in {rel}"
                return (f"the server has not loaded the current revocation list ({_in_lab(crl)}): lab reload "
                        "loads it")
        if name == "client-cert" and obs.status == 400:
            verdict = obs.client_verify or ""
            if client_ca and client_ca != lab_client_ca:
                return (f"the server trusts a CA other than the lab's client CA: ssl_client_certificate in {rel} "
                        f"is {_in_lab(client_ca)} ({verdict})")
            if "chain too long" in verdict or "depth" in verdict:
                return (f"the client's chain is longer than the server accepts: ssl_verify_depth in {rel} is "
                        f"{directive(conf, 'ssl_verify_depth')} ({verdict})")
            if "CRL" in verdict or "crl" in verdict:
                return (f"the server cannot use its revocation list ({verdict}): check ssl_crl in {rel} and "
                        f"{layout.CRL_DIR}/{layout.CRL_FILE} (lab doctor; lab up renews it)")
            if "revoked" in verdict:
                return "the lab's own client certificate is revoked: lab up --regenerate makes a new set"
            return f"the server refused the lab's client certificate: {verdict or obs.reason} (lab logs mtls)"
        if name in ("rogue-ca", "expired", "wrong-purpose", "revoked") and obs.status == 400 \
                and scenario.expect.client_verify not in (obs.client_verify or ""):
            if client_ca and client_ca != lab_client_ca:
                return (f"refused for another reason than the lesson's ({obs.client_verify}): the server trusts a CA "
                        f"other than the lab's client CA: ssl_client_certificate in {rel} is {_in_lab(client_ca)}")
            return (f"refused, but for another reason than the lesson's: the server said {obs.client_verify} "
                    f"(ssl_verify_depth, ssl_crl and ssl_client_certificate in {rel})")
    return f"expected {scenario.expect.describe()}; see lab logs {scenario.server} for what the server saw"
