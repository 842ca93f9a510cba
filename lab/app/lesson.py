"""The lesson's checks: every scenario as a real request (verify), the curl
command that shows one, the commands to try next, and one scenario's
handshake message by message."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from lab.app.selection import Lab
from lab.app.servers import not_running, require_running
from lab.core import layout
from lab.core.errors import LabError, UsageError, VerificationFailed
from lab.core.files import staged_path

if TYPE_CHECKING:
    from lab.teach.handshake import Handshake
    from lab.teach.verify import Result


@dataclass(frozen=True)
class VerifyReport:
    results: list[Result]
    failure: Optional[LabError] = None


def _host(host: Optional[str]) -> Optional[str]:
    from lab.core.settings import validate_san

    return None if host is None else validate_san(host).split(":", 1)[1]


def verify(lab: Lab, only: Optional[list[str]] = None, host: Optional[str] = None,
           as_student: Optional[str] = None) -> VerifyReport:
    from lab.teach import verify as checks

    results = checks.run(lab.dir, lab.settings, only=only, host=_host(host), as_student=as_student)
    failed = [r for r in results if not r.passed]
    if not failed:
        return VerifyReport(results)
    hint = ""
    if any(r.observation.kind == "connect-error" for r in failed):
        hint = not_running(lab.name) or "is the lab running? `lab up` starts it"
    return VerifyReport(results, VerificationFailed(
        f"{len(failed)} of {len(results)} scenarios did not behave as expected: "
        + ", ".join(r.scenario for r in failed), hint=hint))


def curl(lab: Lab, scenario: str, host: Optional[str] = None, as_student: Optional[str] = None) -> str:
    from lab.teach import verify as checks

    sc = _gallery(lab, scenario) or checks.pick(checks.scenarios(lab.dir, as_student), [scenario])[0]
    return checks.curl_command(sc, lab.dir, lab.settings, _host(host))


def _gallery(lab: Lab, scenario: str):
    """gallery:NAME, a gallery certificate as a scenario (its certificates made if they are not there yet)."""
    from lab.app import gallery as gallery_app
    from lab.teach import gallery

    if not scenario.startswith(gallery.PREFIX):
        return None
    gallery.find(scenario)
    gallery_app.ensure(lab)
    return gallery.scenario(lab.dir, scenario)


def try_next(lab: Lab) -> list[tuple[str, str]]:
    """The commands to try after `lab up`, with what each shows."""
    from lab.teach import verify as checks

    where = lab.selector
    hints = [(f"lab verify{where}", "every scenario, what it shows, ✓/✗")]
    hints += [(checks.curl_command(sc, lab.dir, lab.settings), "") for sc in checks.SCENARIOS
              if sc.name in ("trusted", "client-cert", "no-cert")]
    hints += [(f"lab logs mtls{where}", "what the server saw on each request"), (f"lab down{where}", "")]
    hints += [(url, "for students on the room's network (their README says so)") for url in lab.settings.student_urls()]
    return hints


def handshake(lab: Lab, scenario: str = "client-cert", tls: Optional[str] = None, keylog: Optional[Path] = None,
              pcap: Optional[Path] = None, as_student: Optional[str] = None, host: Optional[str] = None) -> Handshake:
    """One scenario's connection, every TLS message as it crossed (openssl s_client -msg);
    optionally its session keys (NSS key log) and a capture of it, for Wireshark."""
    from lab.engine import capture, runtime
    from lab.pki import students
    from lab.teach import handshake as hs
    from lab.teach import verify as checks

    check_names([scenario])
    if tls is not None and tls not in hs.TLS_VERSIONS:
        raise UsageError(f"--tls {tls}: lab's servers speak TLS 1.2 and 1.3 only (1.0 and 1.1 are deprecated, "
                         "RFC 8996): use --tls 1.2 or --tls 1.3")
    for target, what in ((keylog, "--keylog"), (pcap, "--pcap")):
        if target is not None:
            capture.writable_target(target, what)
    student = students.find(lab.dir, as_student) if as_student else None
    if student is not None and student.status == "revoked":
        checks.require_key(student)
        sc = checks.revoked_scenario(student)   # a revoked student's handshake is a story of its own
    else:
        sc = _gallery(lab, scenario) or checks.pick(checks.scenarios(lab.dir, as_student), [scenario])[0]
    engine = runtime.connect()
    require_running(engine, lab, sc.server, "there is no handshake to show")
    address, hostname, port = checks.target(sc, lab.settings, _host(host))
    with contextlib.ExitStack() as stack:
        # Session secrets: in a file private from the start (like SSLKEYLOGFILE); empty when no keys were
        # made (the handshake ended early).
        keys = stack.enter_context(staged_path(keylog)).absolute() if keylog is not None else None
        if pcap is not None:
            stack.enter_context(capture.Capture(pcap, port))
        seen = hs.observe(lab.dir, sc, address, hostname, port, tls, keys)
    if lab.settings.ocsp and sc.server == "mtls" and sc.client_cert:
        seen.ocsp = _ocsp_question(engine, lab, lab.dir / sc.client_cert[0])
    return seen


def _ocsp_question(engine, lab: Lab, cert_file: Path) -> str:
    """What the mTLS server asks the lab's responder at a full handshake, asked again now, and the answer."""
    from lab.engine import runtime
    from lab.pki import ca

    try:
        cert = ca.load_cert(cert_file)
        client_ca = ca.load_cert(layout.certs_dir(lab.dir) / layout.CLIENT_CA_CRT)
    except (OSError, ValueError):
        return ""
    who = f"{layout.container_name(lab.name, 'ocsp')} (http://{layout.container_name(lab.name, 'ocsp')}:{layout.OCSP_PORT})"
    if cert.issuer != client_ca.subject:
        return (f"the server asks {who} about this certificate too; it speaks for the client CA alone, so no answer "
                "it can trust: refused")
    status, why = runtime.ocsp_status(engine, lab.name, cert.serial_number)
    asked = f"after the client's Certificate, the server asks {who} about serial {cert.serial_number:X}"
    return f'{asked}: "{status}" (signed by the responder\'s OCSP key)' if status else f"{asked}: no answer ({why})"


def check_names(names: list[str]) -> None:
    """A misspelt scenario name fails before any lab is read (gallery:NAME names a gallery certificate)."""
    from lab.teach import gallery
    from lab.teach import verify as checks

    for n in names:
        if n.startswith(gallery.PREFIX):
            gallery.find(n)
    checks.check_names([n for n in names if not n.startswith(gallery.PREFIX)])
