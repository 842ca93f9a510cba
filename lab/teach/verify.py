"""Stage 4: verification. curl-equivalent HTTPS requests against the running
lab, the successes and the failures the lesson is about.

Each scenario says what it shows, what should happen and what did happen; the
CLI only renders the results. Requests use Python's ssl module held to a
modern client's bar: VERIFY_X509_STRICT is set explicitly (Python 3.13 sets it
by default), so the lab's certificates are checked as strictly on every
Python.
"""

from __future__ import annotations

import http.client
import re
import shlex
import socket
import ssl
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from lab.core import layout
from lab.core.concurrent import each
from lab.core.errors import CertificateError, UsageError
from lab.core.layout import Server
from lab.core.net import bracketed, host_port
from lab.core.settings import Settings

PATH = "/" + layout.HELLO_FILE
HELLO = "Hello, world!"
# A name no certificate of the lab covers (.invalid is reserved: RFC 2606).
WRONG_NAME = "wrong-name.invalid"


#: Whom the client trusts for the server: the lab's server CA, the system's CAs only, or nobody (--insecure).
Trust = Literal["lab", "system", "none"]


@dataclass(frozen=True)
class Expect:
    """What a scenario should observe: an HTTP status (and text in the reason
    or body), or a TLS failure on the client side (and text in its reason)."""

    kind: Literal["http", "tls-error"]
    status: int | None = None
    text: str = ""
    client_verify: str = ""     # mTLS: text in nginx's $ssl_client_verify, echoed in X-Client-Verify
    subject: str = ""           # mTLS: text in the client subject the server echoes (X-Client-Subject)
    identity: str | None = None  # mTLS: who the server authorized (X-Lab-Identity, login:role); "" nobody
    spiffe: bool = False        # the lesson is the certificate's SPIFFE ID: show it beside the identity

    def describe(self) -> str:
        if self.kind == "http":
            seen = f"; server's verdict: {self.client_verify}" if self.client_verify else ""
            who = "" if self.identity is None else f"; identity: {self.identity or 'nobody the lab knows'}"
            return f"HTTP {self.status}" + (f" {self.text}" if self.text else "") + seen + who
        return f"client refuses: {self.text}"


@dataclass(frozen=True)
class Scenario:
    name: str
    server: Server
    shows: str                  # one sentence: what this teaches
    expect: Expect
    trust: Trust = "lab"
    client_cert: tuple[str, str] | None = None   # (certificate, key), relative to the lab directory
    hostname: str = "localhost"
    max_tls: str | None = None                   # "1.2": a client that offers TLS 1.2 at most
    path: str = "/" + layout.HELLO_FILE          # what it asks for
    weak_client: bool = False                    # sends what a modern client refuses to (lab gallery: RSA-1024)


_CERTS, _DEMO = layout.CERTS_DIR, layout.DEMO_DIR


def _pair(folder: str, pair: tuple[str, str]) -> tuple[str, str]:
    return (f"{folder}/{pair[0]}", f"{folder}/{pair[1]}")


SCENARIOS: tuple[Scenario, ...] = (
    # --- TLS server: the client checks the server.
    Scenario("trusted", "tls",
             "A client that trusts the server CA gets the page: the server proved who it is.",
             Expect("http", 200, HELLO)),
    Scenario("untrusted", "tls",
             "With only the system's CAs the client rejects the server before any HTTP: nobody it trusts vouches for it.",
             Expect("tls-error", text="unable to get local issuer certificate"), trust="system"),
    Scenario("insecure", "tls",
             "curl --insecure skips checking the server and gets the page. mTLS gives the server no such switch: "
             "it always checks the client.",
             Expect("http", 200, HELLO), trust="none"),
    Scenario("wrong-name", "tls",
             "The right CA is not enough: the name the client asked for must be in the server's certificate.",
             Expect("tls-error", text="Hostname mismatch"), hostname=WRONG_NAME),
    # --- mTLS server: the server checks the client too.
    Scenario("client-cert", "mtls",
             "With the lab's client certificate the mTLS server answers, and knows who the client is.",
             Expect("http", 200, HELLO, client_verify="SUCCESS"),
             client_cert=_pair(_CERTS, (layout.CLIENT_CRT, layout.CLIENT_KEY))),
    Scenario("no-cert", "mtls",
             "Without a client certificate the TLS handshake completes, then nginx refuses the request with HTTP 400.",
             Expect("http", 400, "No required SSL certificate was sent", client_verify="NONE")),
    Scenario("rogue-ca", "mtls",
             "A client certificate from a CA the server does not trust is refused, however valid it is otherwise.",
             Expect("http", 400, "The SSL certificate error", client_verify="FAILED:unable to verify the first certificate"),
             client_cert=_pair(_DEMO, layout.ROGUE_CLIENT)),
    Scenario("expired", "mtls",
             "A certificate from the right CA whose validity has ended is refused.",
             Expect("http", 400, "The SSL certificate error", client_verify="FAILED:certificate has expired"),
             client_cert=_pair(_DEMO, layout.EXPIRED_CLIENT)),
    Scenario("wrong-purpose", "mtls",
             "A certificate from the right CA made for servers (serverAuth, no clientAuth) cannot log a client in.",
             Expect("http", 400, "The SSL certificate error", client_verify="FAILED:unsuitable certificate purpose"),
             client_cert=_pair(_DEMO, layout.WRONG_PURPOSE_CLIENT)),
    Scenario("instructor-only", "mtls",
             "The lab's instructor certificate (the instructor role, by issuer and serial) reaches /instructor/, "
             "where a student's valid certificate gets 403 (the forbidden scenario).",
             Expect("http", 200, "the instructors' page", identity="lab-instructor:instructor"),
             client_cert=_pair(_DEMO, layout.INSTRUCTOR_CLIENT), path="/instructor/"),
    Scenario("same-cn-other-ca", "mtls",
             "A partner CA the server also trusts issued a certificate with the instructor's very subject, serial and "
             "SPIFFE ID: it authenticates, but the identity map is keyed on issuer and serial, so it is nobody: 403. "
             "A map on the subject alone would have let it in.",
             Expect("http", 403, "only the instructor role may reach /instructor/", client_verify="SUCCESS",
                    subject="OU=instructor", identity=""),
             client_cert=_pair(_DEMO, layout.IMPOSTOR_CLIENT), path="/instructor/"),
    Scenario("spiffe-id", "mtls",
             "An identity beyond the CN: the certificate's one URI SAN (spiffe://LAB/ROLE/LOGIN), as service meshes "
             "read it. nginx has no variable for SANs; the lab's map by issuer and serial names the same login and role.",
             Expect("http", 200, "Hello", identity="(the login and role of the certificate's SPIFFE ID)", spiffe=True),
             client_cert=_pair(_DEMO, layout.INSTRUCTOR_CLIENT), path="/whoami"),
    Scenario("forbidden", "mtls",
             "Authenticated is not authorized: the lab's client certificate is valid, but a student's, and "
             "/instructor/ is for the instructor role: HTTP 403, naming the identity and the rule.",
             Expect("http", 403, "only the instructor role may reach /instructor/"),
             client_cert=_pair(_CERTS, (layout.CLIENT_CRT, layout.CLIENT_KEY)), path="/instructor/"),
)


def scenarios(lab_dir: Path | None = None, as_student: str | None = None) -> list[Scenario]:
    """The scenarios for this lab: client-cert as a student (--as NAME), and a
    `revoked` scenario for each student whose certificate has been revoked."""

    from lab.pki import students

    chosen = list(SCENARIOS)
    if lab_dir is None:
        return chosen
    chosen = [_with_spiffe_identity(sc, lab_dir) if sc.name == "spiffe-id" else sc for sc in chosen]
    ocsp = _asks_ocsp(lab_dir)
    if ocsp:
        chosen = [_partner_under_ocsp(sc) if sc.name == "same-cn-other-ca" else sc for sc in chosen]
    if as_student:
        student = students.find(lab_dir, as_student)
        if student.status != "valid":
            raise UsageError(f"{as_student}'s certificate is {student.status}: --as takes a valid one"
                             + (" (the revoked scenario shows a revoked one)" if student.status == "revoked" else ""))
        login = student.name                 # --as takes a login, or a display name one student has
        folder = f"{layout.CLIENTS_DIR}/{login}"
        require_key(student)
        i = next(i for i, sc in enumerate(chosen) if sc.name == "client-cert")
        chosen[i] = replace(chosen[i], shows=f"With {student.shown}'s own certificate the mTLS server answers, and "
                                             f"knows it is {student.shown}.",
                            expect=replace(chosen[i].expect, subject=_subject_mark(student)),
                            client_cert=(f"{folder}/{layout.student_file(login, 'crt')}",
                                         f"{folder}/{layout.student_file(login, 'key')}"))
    # Students exist only once `lab client add` ran: don't pay for reading certificates otherwise.
    has_students = layout.clients_dir(lab_dir).is_dir()
    # Every revoked student, each with their own certificate: a revocation the
    # server does not enforce fails verify, whoever it concerns.
    # (Not those whose key lab never had: a signed request's key stays with the student.)
    revoked = [c for c in students.list_students(lab_dir) if c.status == "revoked"
               and c.file("key").is_file()] if has_students else []
    chosen += [revoked_scenario(c, ocsp) for c in revoked]
    return chosen


def _asks_ocsp(lab_dir: Path) -> bool:
    """Does this lab's mTLS server ask an OCSP responder (lab up --revocation ocsp|both)?"""
    from lab.core.settings import load_saved

    try:
        return load_saved(lab_dir).get("revocation", layout.DEFAULT_REVOCATION) in ("ocsp", "both")
    except UsageError:
        return False


def _partner_under_ocsp(sc: Scenario) -> Scenario:
    """With OCSP, nginx asks the lab's responder about every client certificate; it speaks for the client CA
    alone, so the partner's certificate is refused before any rule (its answer is signed by no one the partner
    CA vouches for)."""
    return replace(sc, shows="A partner CA the server also trusts issued a certificate with the instructor's very "
                             "subject. With OCSP on, nginx asks the lab's responder about it too; the responder speaks "
                             "for the client CA alone, so the partner's certificate is refused before any rule: a "
                             "server that trusts a second CA needs that CA's answers as well.",
                   expect=Expect("http", 400, "The SSL certificate error",
                                 client_verify="FAILED:certificate status request failed", subject="OU=instructor"))


def spiffe_id(cert_path: Path) -> str | None:
    """The certificate's SPIFFE ID: its one URI SAN (None when it has none, or several: SPIFFE allows one)."""
    from lab.pki.ca import load_cert, uri_sans

    try:
        uris = uri_sans(load_cert(cert_path))
    except (OSError, ValueError):
        return None
    return uris[0] if len(uris) == 1 else None


def identity_of(spiffe: str | None) -> str:
    """spiffe://LAB/ROLE/LOGIN as the server's map writes the identity (LOGIN:ROLE); "" when there is none."""
    parts = (spiffe or "").removeprefix("spiffe://").split("/")
    return f"{parts[2]}:{parts[1]}" if spiffe and len(parts) == 3 else ""


def _with_spiffe_identity(sc: Scenario, lab_dir: Path) -> Scenario:
    """The spiffe-id scenario expects the server's identity to be the one the certificate's URI SAN names."""
    from dataclasses import replace

    assert sc.client_cert is not None
    wanted = identity_of(spiffe_id(lab_dir / sc.client_cert[0])) or "(none: the certificate has no SPIFFE ID)"
    return replace(sc, expect=replace(sc.expect, identity=wanted))


def _subject_mark(student) -> str:
    """What in the subject nginx echoes (RFC 2253) says it is this student: their login as the UID, or, in a
    certificate from before logins, the common name (nginx escapes a name's bytes past ASCII: \\C3\\A9)."""
    from cryptography.x509.oid import NameOID

    from lab.pki.ca import load_cert

    try:
        cert = load_cert(student.file("crt"))
    except (OSError, ValueError):
        return f"CN={student.name},"
    return f"UID={student.name}," if cert.subject.get_attributes_for_oid(NameOID.USER_ID) else f"CN={student.name},"


def require_key(student) -> None:
    """Acting as a student takes their key; a signed request's key never came to the lab."""
    if not student.file("key").is_file():
        raise UsageError(f"{student.name}'s key is not in this lab ({student.name} made it and had the request "
                         "signed): --as needs it", hint=f"{student.name} runs curl with their own key: their "
                         "README says how")


def revoked_scenario(student, ocsp: bool = False) -> Scenario:
    """A revoked student's own certificate against the mTLS server: refused."""
    folder = f"{layout.CLIENTS_DIR}/{student.name}"
    how = ("asks the client CA's OCSP responder at every full handshake" if ocsp
           else "checks the client CA's revocation list")
    return Scenario(
        "revoked", "mtls",
        f"{student.name}'s certificate was revoked: right CA, still in date, yet refused, because the server {how}.",
        Expect("http", 400, "The SSL certificate error", client_verify="FAILED:certificate revoked"),
        client_cert=(f"{folder}/{layout.student_file(student.name, 'crt')}",
                     f"{folder}/{layout.student_file(student.name, 'key')}"))


ALL_NAMES = (*(sc.name for sc in SCENARIOS), "revoked")


def check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        raise UsageError(f"unknown scenario {', '.join(unknown)}: known are {', '.join(ALL_NAMES)}")


def pick(available: list[Scenario], names: list[str]) -> list[Scenario]:
    """The named scenarios (all when none are named), or a UsageError that says why not."""
    check_names(names)
    if "revoked" in names and "revoked" not in [sc.name for sc in available]:
        raise UsageError("there is no `revoked` scenario until a student's certificate is revoked "
                         "(lab client revoke NAME)")
    return [sc for sc in available if not names or sc.name in names]


@dataclass
class Observation:
    """What one request saw: an HTTP answer, a TLS failure on the client side, or no connection."""

    address: str                      # "127.0.0.1:8888"
    host: str                         # the name asked for (SNI, Host)
    kind: Literal["http", "tls-error", "connect-error"] = "connect-error"
    reason: str = ""
    status: int | None = None
    body: str = ""
    tls_version: str | None = None
    cipher: str | None = None
    verify_code: int | None = None
    client_verify: str | None = None  # what nginx echoed: X-Client-Verify, -Subject, -Serial
    client_subject: str | None = None
    client_serial: str | None = None
    identity: str | None = None       # who the server took the client for when it authorized (X-Lab-Identity)
    spiffe_id: str | None = None      # the URI SAN of the certificate the client sent (nginx has no variable for it)

    @property
    def port(self) -> str:
        return self.address.rsplit(":", 1)[-1]

    def to_dict(self) -> dict:
        """Without the body, and without what was not seen."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "body"}


@dataclass
class Result:
    scenario: str
    server: Server
    shows: str
    expected: str
    observed: str
    passed: bool
    observation: Observation
    curl: str = ""
    cause: str = ""
    short: str = ""             # what was observed, in one projector line (summary())             # when it did not behave: what that means, and where to look (lab/teach/diagnose.py)

    @property
    def layer(self) -> str:
        """Where the request stopped: the handshake (a client refused the server), authentication (the
        server refused the certificate: 400), authorization (the server refused the identity: 403), or
        nowhere (served)."""
        obs = self.observation
        if obs.kind != "http":
            return "handshake" if obs.kind == "tls-error" else "connection"
        return {400: "authentication", 403: "authorization"}.get(obs.status or 0, "served")

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["observation"]
        d["layer"] = self.layer
        d["detail"] = self.observation.to_dict()
        return d


def client_context(lab_dir: Path, sc: Scenario) -> ssl.SSLContext:
    if sc.trust == "none":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif sc.trust == "system":
        ctx = ssl.create_default_context()
    else:
        ctx = ssl.create_default_context(cafile=str(layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT))
    if sc.trust != "none":
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if sc.client_cert:
        crt, key = sc.client_cert
        missing = [rel for rel in (crt, key) if not (lab_dir / rel).is_file()]
        if missing:
            student = missing[0].startswith(layout.CLIENTS_DIR + "/")
            fix = (f"lab client add --force {Path(missing[0]).parent.name} issues a new one" if student else
                   "put it back; else `lab up --regenerate` makes a new set (new CAs: every student then needs a "
                   "new certificate)")
            raise CertificateError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: the "
                                   f"{sc.name} scenario needs {'it' if len(missing) == 1 else 'them'}", hint=fix)
        if sc.weak_client:         # the server is under test: the client sends whatever it is given
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(str(lab_dir / crt), str(lab_dir / key))
    if sc.max_tls:
        ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[sc.max_tls]
    return ctx


_TITLE = re.compile(r"<title>\s*\d{3}\s*(.*?)\s*</title>", re.S)
_CENTER = re.compile(r"<center>(?!<h1>)(.*?)</center>", re.S)


def _reason_from_page(body: str, default: str) -> str:
    """nginx's error pages carry the precise reason ("No required SSL
    certificate was sent") in the page, not in the status line: in its HTML
    pages, or as the first line of the lab's text pages for curl."""
    m = _CENTER.search(body) or _TITLE.search(body)
    if m:
        return m.group(1).strip()
    first = body.strip().splitlines()[0].strip() if body.strip() else ""
    return first if first and not first.startswith("<") and len(first) < 120 else default


def request(address: str, port: int, sc: Scenario, lab_dir: Path, hostname: str,
            timeout: float = 3.0) -> Observation:
    """One HTTPS GET to address:port for `hostname`, as curl would make it; returns what was observed."""
    ctx = client_context(lab_dir, sc)
    obs = Observation(host_port(address, port), hostname)
    if sc.client_cert:
        obs.spiffe_id = spiffe_id(lab_dir / sc.client_cert[0])
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        obs.reason = f"{e.strerror or e}"
        return obs
    try:
        with ctx.wrap_socket(raw, server_hostname=hostname) as tls:
            suite = tls.cipher()
            obs.tls_version, obs.cipher = tls.version(), suite[0] if suite else None
            host = bracketed(hostname) + ("" if port == 443 else f":{port}")
            tls.sendall(f"GET {sc.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {layout.OWN_AGENT}-verify\r\nConnection: close\r\n\r\n".encode())
            resp = http.client.HTTPResponse(tls)
            resp.begin()
            body = resp.read(65536).decode(errors="replace")
            obs.kind, obs.status, obs.body = "http", resp.status, body.strip()
            obs.reason = _reason_from_page(body, resp.reason) if resp.status >= 400 else resp.reason
            obs.client_verify = resp.getheader("X-Client-Verify") or None
            obs.client_subject = resp.getheader("X-Client-Subject") or None
            obs.client_serial = resp.getheader("X-Client-Serial") or None
            # nginx sends no header for an empty value: on the mTLS server that is "nobody the lab knows".
            obs.identity = resp.getheader("X-Lab-Identity", "") if obs.client_verify else None
    except ssl.SSLCertVerificationError as e:
        obs.kind, obs.reason, obs.verify_code = "tls-error", e.verify_message or str(e), e.verify_code
    except ssl.SSLError as e:
        obs.kind, obs.reason = "tls-error", e.reason or str(e)
    except (OSError, http.client.HTTPException) as e:
        obs.kind, obs.reason = "connect-error", f"{e.__class__.__name__}: {e}"
    finally:
        raw.close()
    return obs


def _first_sentence(body: str) -> str:
    m = re.match(r"(.{1,120}?[.!?])(\s|$)", body)
    return m.group(1) if m else body[:60]


SAW = "; server saw "


def describe(obs: Observation, expect: Expect | None = None) -> str:
    """What was observed, the facts first: "HTTP 400 (FAILED:certificate has expired) The SSL certificate error;
    server saw CN=…". On the projector the verdict stays on its line; the subject, last, may wrap or go."""
    if obs.kind == "http":
        text = _first_sentence(obs.body) if obs.status is not None and obs.status < 400 and obs.body else obs.reason
        verdict = f" ({obs.client_verify})" if obs.client_verify and obs.client_subject else ""
        who = f"; {_who(obs, expect)}" if expect is not None and expect.identity is not None else ""
        seen = f"{SAW}{obs.client_subject}" if obs.client_subject else ""
        return f"HTTP {obs.status}{verdict} {text}{who}{seen}"
    if obs.kind == "tls-error":
        return f"client refuses: {obs.reason}"
    return f"no connection: {obs.reason}"


def _who(obs: Observation, expect: Expect) -> str:
    return f"identity: {obs.identity or 'nobody the lab knows'}" + (
        f" (SAN {obs.spiffe_id or 'none'})" if expect.spiffe else "")


def summary(obs: Observation, expect: Expect) -> str:
    """What was observed in one projector line: the status and nginx's verdict, then the identity the server
    authorized (where that is the lesson) or its words; the subject it saw is for `lab verify NAME`."""
    if obs.kind != "http":
        return describe(obs, expect)
    verdict = f" ({obs.client_verify})" if obs.client_verify and obs.client_subject else ""
    if expect.identity is not None or obs.status == 403:        # authorization: whom the server took it for
        return f"HTTP {obs.status}{verdict} {_who(obs, expect)}"
    if verdict.startswith(" (FAILED"):
        return f"HTTP {obs.status}{verdict}"
    return describe(obs, expect).split(SAW)[0]


def judge(expect: Expect, obs: Observation) -> bool:
    if expect.kind == "http":
        return (obs.kind == "http" and obs.status == expect.status
                and expect.text in f"{obs.body} {obs.reason}"
                and expect.client_verify in (obs.client_verify or "")
                and expect.subject in (obs.client_subject or "")
                and (expect.identity is None or (obs.identity or "") == expect.identity))
    return obs.kind == "tls-error" and expect.text.lower() in obs.reason.lower()


def target(sc: Scenario, settings: Settings, host: str | None) -> tuple[str, str, int]:
    """(address to connect to, host name to ask for, port) for a scenario.

    On the lab's own machine the client connects to the published address and
    asks for "localhost", the name in the server certificate. With --host
    (a student checking the instructor's lab) it connects to that host and asks
    for it by that name, which must then be in the certificate (lab up --san).
    """
    port = settings.ports()[sc.server]
    address = host or settings.connect_address()
    name = host or "localhost"
    return address, (sc.hostname if sc.hostname != "localhost" else name), port


def curl_command(sc: Scenario, lab_dir: Path, settings: Settings, host: str | None = None) -> str:
    """The curl command line that shows the same thing, to paste in a terminal."""
    address, hostname, port = target(sc, settings, host)
    args = ["curl", "-sS"]
    if sc.expect.kind == "http" and sc.expect.status and sc.expect.status >= 400:
        args.append("-i")   # show the status line: the lesson is in it
    if hostname != address and not (hostname == "localhost" and address in ("127.0.0.1", "::1")):
        args += ["--resolve", f"{hostname}:{port}:{bracketed(address)}"]
    if sc.trust == "lab":
        args += ["--cacert", str(layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT)]
    elif sc.trust == "none":
        args.append("--insecure")
    if sc.max_tls:
        args += ["--tls-max", sc.max_tls]
    if sc.weak_client:
        return _weak_client_command(sc, lab_dir, address, hostname, port)
    if sc.client_cert:
        crt, key = sc.client_cert
        args += ["--cert", str(lab_dir / crt), "--key", str(lab_dir / key)]
    args.append(f"https://{bracketed(hostname)}:{port}{sc.path}")
    return shlex.join(args)


def _weak_client_command(sc: Scenario, lab_dir: Path, address: str, hostname: str, port: int) -> str:
    """curl loads a client certificate before it lowers OpenSSL's security level, and refuses an RSA-1024 key
    or a SHA-1 signature itself: the same request with openssl s_client, which lowers it first."""
    assert sc.client_cert is not None
    request = f"GET {sc.path} HTTP/1.1\\r\\nHost: {bracketed(hostname)}:{port}\\r\\nConnection: close\\r\\n\\r\\n"
    args = ["openssl", "s_client", "-quiet", "-connect", host_port(address, port), "-servername", hostname,
            "-CAfile", str(layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT), "-cipher", "DEFAULT:@SECLEVEL=0",
            "-cert", str(lab_dir / sc.client_cert[0]), "-key", str(lab_dir / sc.client_cert[1])]
    return f"printf '{request}' | {shlex.join(args)}"


def run(lab_dir: Path, settings: Settings, only: list[str] | None = None, host: str | None = None,
        timeout: float = 3.0, as_student: str | None = None) -> list[Result]:
    """Run the scenarios concurrently against the published ports; results in scenario order."""
    chosen = pick(scenarios(lab_dir, as_student), only or [])
    return each(lambda sc: run_one(sc, lab_dir, settings, host, timeout), chosen, at_once=max(1, len(chosen)))


def run_one(sc: Scenario, lab_dir: Path, settings: Settings, host: str | None = None,
            timeout: float = 3.0) -> Result:
    """One scenario's request, judged."""
    address, hostname, port = target(sc, settings, host)
    obs = request(address, port, sc, lab_dir, hostname, timeout)
    passed = judge(sc.expect, obs)
    cause = "" if passed else _explain(sc, obs, lab_dir)
    return Result(sc.name, sc.server, sc.shows, sc.expect.describe(), describe(obs, sc.expect), passed,
                  obs, curl_command(sc, lab_dir, settings, host), cause, summary(obs, sc.expect))


def _explain(sc: Scenario, obs: Observation, lab_dir: Path) -> str:
    from lab.teach.diagnose import explain

    return explain(sc, obs, lab_dir)
