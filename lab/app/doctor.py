"""Preflight: can `lab up` work here, now? One check per thing it needs.

Each check returns what it saw and, when it fails, the fix and the error
`lab up` raises for it. `lab doctor` shows them all; `lab up` runs the same
list first (`preflight`) and stops at the first blocking failure with its
fix, before anything is written. Nothing is sent anywhere but the local
Docker engine (and, for an absent image, that engine's own registry lookup).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core import layout
from lab.core.errors import CertificateError, DockerUnavailable, ImageUnavailable, LabError, RuntimeFailure
from lab.core.settings import Settings

if TYPE_CHECKING:
    from lab.engine.seam import Engine

DEFAULT_HOURS = 8   # a workshop day


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True                 # does a failure stop `lab up`?
    error: type[LabError] = LabError      # what `lab up` raises when it does

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix, "blocking": self.blocking}

    def raise_if_blocking(self) -> None:
        if not self.ok and self.blocking:
            raise self.error(self.detail, hint=self.fix)


def check_engine(versioned: bool = True) -> tuple[Engine | None, Check]:
    """The engine, once it has answered; its version only when it is shown (lab doctor: one more request)."""
    from lab.engine import runtime

    try:
        engine = runtime.connect()
        return engine, Check("docker engine", True, f"reachable, version {engine.version()}" if versioned else "reachable")
    except LabError as e:
        return None, Check("docker engine", False, str(e), e.hint, error=DockerUnavailable)


def check_image(engine: Engine | None, image: str) -> Check:
    from lab.engine import images

    if engine is None:
        return Check("image", False, f"{image}: cannot tell without the engine", "start the Docker engine first",
                     error=DockerUnavailable)
    if images.present(engine, image):
        return Check("image", True, f"{image} is on this machine")
    try:
        images.registry_has(engine, image)
        return Check("image", True, f"{image} is not on this machine; its registry has it (lab up pulls it)")
    except LabError as e:
        return Check("image", False, f"image {image} is not on this machine and could not be pulled: its registry "
                     f"cannot be reached ({e})", images.missing_hint(engine, image), error=ImageUnavailable)


def check_openssl() -> Check:
    from lab.pki import certs

    try:
        return Check("openssl", True, certs.openssl_version())
    except CertificateError as e:
        return Check("openssl", False, str(e), e.hint, error=CertificateError)


def check_ports(engine: Engine | None, s: Settings) -> list[Check]:
    from lab.engine import runtime

    own = set()
    if engine is not None:  # ports this lab's own containers hold are no obstacle (lab up replaces them)
        own = {int(st.published.rsplit(":", 1)[1]) for st in runtime.status(engine, s.name, None) if st.published}
    checks = []
    for server, port in s.ports().items():
        if port in own:
            checks.append(Check(f"port {port}", True, f"published by this lab's {server} server"))
        elif runtime.port_free(s.bind, port):
            checks.append(Check(f"port {port}", True, f"free on {s.bind}"))
        else:
            taken = runtime.port_in_use(engine, s.bind, port, f"--{server}-port")
            checks.append(Check(f"port {port}", False, str(taken), taken.hint, error=RuntimeFailure))
    return checks


def check_dir(lab_dir: Path) -> Check:
    probe = lab_dir if lab_dir.exists() else next((p for p in lab_dir.absolute().parents if p.exists()), Path("/"))
    if lab_dir.exists() and not lab_dir.is_dir():
        return Check("lab directory", False, f"lab directory {lab_dir} is a file", "choose another with --dir")
    if not os.access(probe, os.W_OK) or (probe != lab_dir and not probe.is_dir()):
        return Check("lab directory", False, f"lab directory {lab_dir} is not writable (checked {probe})",
                     "choose another with --dir, or fix its permissions")
    return Check("lab directory", True, f"{lab_dir} is writable" if lab_dir.exists() else f"{lab_dir} can be made")


def check_certs(lab_dir: Path, s: Settings, hours: float, now: dt.datetime) -> Check:
    from lab.pki import certs

    directory = layout.certs_dir(lab_dir)
    if not directory.exists():
        return Check("certificates", True, "none yet: lab up makes them")
    try:
        result = certs.check_existing(directory, s, now=now)
    except LabError as e:
        return Check("certificates", False, str(e), e.hint, error=CertificateError)
    left = result.not_after - now
    if left < dt.timedelta(hours=hours):
        return Check("certificates", False,
                     f"the first one expires {result.not_after:%Y-%m-%d %H:%M} UTC, within the next {hours:g} hours",
                     "run `lab up --regenerate` before the workshop", error=CertificateError)
    return Check("certificates", True, f"valid; the first expiry is {result.not_after:%Y-%m-%d} ({left.days} days)")


def check_network(engine: Engine | None, s: Settings) -> Check:
    """A network with the lab's network name that lab did not make blocks `lab up`."""
    name = layout.network_name(s.name)
    if engine is None:
        return Check("network", True, f"{name}: cannot tell without the engine", blocking=False)
    found = engine.network(name)
    if found is not None and found.labels.get(layout.LABEL_LAB) != s.name:
        return Check("network", False, f"a network named {name} exists and was not made by this lab",
                     f"remove it (docker network rm {name}) if it is not needed, or choose another --name",
                     error=RuntimeFailure)
    return Check("network", True, f"{name} is this lab's" if found else f"{name} is free")


def check_ca_database(lab_dir: Path) -> Check:
    """The client CA's database: lab client add and revoke go through it (openssl ca refuses a damaged one)."""
    from lab.pki import ca

    index = ca.ca_index(lab_dir)
    if not index.is_file():
        return Check("client CA database", True, "none yet: lab up makes it", blocking=False)
    where = index.relative_to(lab_dir)
    damaged = ca.ca_index_damage(lab_dir)
    if damaged:
        lines = ", ".join(map(str, damaged[:5])) + (" …" if len(damaged) > 5 else "")
        return Check("client CA database", False, f"{where}: line {lines} is not a certificate record: "
                     "lab client add and lab client revoke will fail", "put the line back as it was, or remove it "
                     "if it was added by hand (each line is one issued certificate)", blocking=False)
    records = ca.ca_records(lab_dir)
    return Check("client CA database", True, f"{len(records)} certificates issued, "
                 f"{sum(r.status == 'R' for r in records)} revoked", blocking=False)


def check_crl(lab_dir: Path, hours: float, now: dt.datetime, engine: Engine | None, lab_name: str) -> Check:
    """The client CA's revocation list: readable, valid through the workshop, and loaded by the running server."""
    from lab.engine import runtime
    from lab.pki import ca

    if not layout.certs_dir(lab_dir).exists():
        return Check("revocation list", True, "none yet: lab up makes it")
    where = f"{layout.CRL_DIR}/{layout.CRL_FILE}"
    nxt = ca.crl_next_update(lab_dir)
    if nxt is None:
        return Check("revocation list", False, f"{where} is missing or unreadable: nginx would refuse every student",
                     "lab up makes it anew from the client CA's database (every revocation is kept, no student "
                     "is lost)", error=CertificateError)
    if nxt <= now + dt.timedelta(hours=hours):
        return Check("revocation list", False, f"{where} is valid until {nxt:%Y-%m-%d %H:%M} UTC, within the next "
                     f"{hours:g} hours: after that nginx refuses every student", "lab up renews it (and reloads the "
                     "server)", error=CertificateError)
    missing = ca.unlisted_revocations(lab_dir)
    if missing:
        return Check("revocation list", False, f"{where} does not list {len(missing)} certificate(s) the client CA "
                     f"revoked (serial {', '.join(ca.serial_hex(n) for n in sorted(missing)[:3])}): those students "
                     "still get in", "lab up makes it anew from the CA database and reloads the server",
                     error=CertificateError)
    from lab.engine import loaded

    states = loaded.state(lab_dir, "mtls", runtime.server_state(engine, lab_name, "mtls")) if engine else None
    state = (states or {}).get(loaded.CRL)
    if state == "older":
        return Check("revocation list", False, f"the running mTLS server has an older revocation list than {where}: "
                     "a student revoked since may still get in", "lab up reloads it", error=CertificateError)
    said = "; the running mTLS server has loaded it" if state == "current" else ""
    return Check("revocation list", True, f"valid until {nxt:%Y-%m-%d}{said}")


def check_room_names(s: Settings) -> Check | None:
    """Room mode: the names in the certificate that no student will reach this machine by (a host name that
    resolves to loopback here). Not blocking: students are sent to the addresses instead."""
    from lab.core import settings

    if not settings.is_room(s.bind):
        return None
    full = Settings(**{**s.__dict__, "sans": tuple(dict.fromkeys(s.sans + settings.room_names(s.bind)))})
    lost, urls = full.unreachable_names(), full.student_urls()
    if not urls:
        return Check("room names", False, "no address or name of this machine leads here from the room's network",
                     "connect this machine to the room's network (or give --san a name students resolve)",
                     blocking=False)
    if lost:
        return Check("room names", False, f"students would not reach this machine as {', '.join(lost)} (it resolves "
                     f"to loopback or not at all): their URLs use {urls[0]}", "add the name to the room's DNS, or "
                     "give --san a name students resolve", blocking=False)
    return Check("room names", True, f"students reach this machine as {', '.join(u.split('/')[2] for u in urls)}",
                 blocking=False)


def check_capture() -> Check:
    """lab handshake --pcap needs tcpdump and the right to capture; nothing else does (never blocks lab up)."""
    from lab.engine import capture

    ok, detail, fix = capture.available()
    return Check("packet capture", ok, detail, fix, blocking=False)


def check_clock(engine: Engine | None, now: dt.datetime) -> Check:
    if now.year < 2024:
        return Check("clock", False, f"this machine says it is {now:%Y-%m-%d}", "set the clock (timedatectl / ntp)")
    if engine is None:
        return Check("clock", True, f"{now:%Y-%m-%d %H:%M} UTC (engine not reachable to compare)", blocking=False)
    engine_time = engine.clock()
    if engine_time is None:
        return Check("clock", True, f"{now:%Y-%m-%d %H:%M} UTC", blocking=False)
    skew = abs((engine_time - now).total_seconds())
    if skew > 120:
        return Check("clock", False, f"this machine and the Docker engine disagree by {skew:.0f} s",
                     "set both clocks (timedatectl / ntp): certificates are checked against them")
    return Check("clock", True, f"{now:%Y-%m-%d %H:%M} UTC, engine within {skew:.0f} s")


def run(lab_dir: Path, s: Settings, hours: float = DEFAULT_HOURS, certificates: bool = True) -> tuple[Engine | None, list[Check]]:
    """Every check, in order; returns (the engine or None, checks).

    `lab up` leaves out the certificates and revocation list checks
    (certificates=False): it makes missing certificates itself and checks
    existing ones with the same code (certs.ensure), raising with the same
    fix, and makes the CRL anew when it is missing, unreadable or running out."""
    from lab.core.concurrent import each

    now = dt.datetime.now(dt.UTC)
    engine, reach = check_engine(versioned=certificates)
    # The checks wait on the engine (or openssl) one request at a time: asked all at once, in the order shown.
    groups: list[Callable[[], list[Check]]] = [
        lambda: [check_image(engine, s.image)], lambda: [check_openssl()], lambda: check_ports(engine, s),
        lambda: [check_network(engine, s)], lambda: [check_dir(lab_dir)]]
    if certificates:
        groups += [lambda: [check_certs(lab_dir, s, hours, now)], lambda: [check_crl(lab_dir, hours, now, engine, s.name)],
                   lambda: [check_ca_database(lab_dir)]]
    if certificates and s.ocsp:
        groups.append(lambda: [check_responder(engine, s)])
    groups += [lambda: [check_clock(engine, now)], lambda: [c for c in [check_room_names(s)] if c is not None]]
    if certificates:   # lab doctor only: lab up needs no capture
        groups.append(lambda: [check_capture()])
    return engine, [reach, *(c for group in each(lambda group: group(), groups, at_once=len(groups)) for c in group)]


def check_responder(engine: Engine | None, s: Settings) -> Check:
    """--revocation ocsp|both: the responder runs and answers (with ssl_ocsp on, nginx refuses everyone when
    it does not). Not blocking: lab up (re)starts it."""
    from lab.core import layout
    from lab.engine import runtime

    name = layout.container_name(s.name, "ocsp")
    if engine is None:
        return Check("OCSP responder", True, f"{name}: cannot tell without the engine", blocking=False)
    found = engine.container(name)
    if found is None or found.status != "running":
        return Check("OCSP responder", False, f"{name} is {'not there' if found is None else found.status}: the "
                     "mTLS server refuses every student while it asks no one", "lab up starts it", blocking=False)
    why = runtime.ask_responder(engine, s.name)
    if why:
        return Check("OCSP responder", False, f"{name} does not answer ({why}): the mTLS server refuses every "
                     "student", "lab logs; lab up starts it again", blocking=False)
    return Check("OCSP responder", True, f"{name} answers, signed by its own OCSP key (the mTLS server asks it at "
                 "every full handshake)")


def preflight(lab_dir: Path, s: Settings) -> Engine:
    """`lab up`'s checks, before anything is written; returns the engine, or raises the first blocker."""
    engine, checks = run(lab_dir, s, certificates=False)
    for check in checks:
        check.raise_if_blocking()
    assert engine is not None     # else the engine check blocked
    return engine
