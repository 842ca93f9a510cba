"""lab race: the revocation race run in a lab of its own (NAME-race, free loopback ports, a CRL and an OCSP
responder), so the class's lab, its CAs and its students are never touched; that lab is removed afterwards,
also when the race is interrupted or fails."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab.app.selection import Lab, Progress, quiet
from lab.core import layout
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from lab.teach.race import Mode, Race

# The bound of every wait, unless --wait says otherwise; a short-lived certificate lives half of it.
DEFAULT_WAIT = 30.0
MAX_WAIT = 300.0


@dataclass(frozen=True)
class RaceReport:
    races: list[Race]
    lab_name: str                # the race's own lab (removed)
    image: str
    ttl: int                     # the short-lived certificate's lifetime, seconds

    def to_dict(self) -> dict:
        return {"lab": self.lab_name, "image": self.image, "short_lived_ttl_s": self.ttl,
                "modes": [r.to_dict() for r in self.races]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mtls_conf(lab: Lab, mode: Mode) -> str:
    """The lesson's mTLS configuration, rendered from its template for this mode of the race."""
    from lab.config import render
    from lab.core.templates import render_text

    revocation = {"crl-no-reload": "crl", "crl-reload": "crl", "short-lived": "crl"}.get(mode, "ocsp")
    ctx = {**render.nginx_context("mtls", replace(lab.settings, revocation=revocation)),
           "ocsp_cache": mode == "ocsp-cache"}
    return render_text("nginx-mtls.conf.j2", **ctx)


def run(base: Lab, modes: list[str] | None = None, wait: float = DEFAULT_WAIT, progress: Progress = quiet) -> RaceReport:
    from lab.app import lifecycle, servers
    from lab.core import settings as settings_mod
    from lab.engine import runtime
    from lab.pki import ca, students
    from lab.teach import race

    unknown = [m for m in modes or [] if m not in race.MODES]
    if unknown:
        raise UsageError(f"unknown mode {', '.join(unknown)}: the modes are {', '.join(race.MODES)}")
    if not 2 <= wait <= MAX_WAIT:
        raise UsageError(f"--wait {wait:g}: from 2 to {MAX_WAIT:g} seconds")
    chosen: list[Mode] = [m for m in race.MODES if not modes or m in modes]
    ttl = max(5, int(wait / 2))
    # Its own name: a lab name has 32 characters at most, and two races at once (two terminals) must not
    # take each other's lab down: the process id tells them apart.
    name = f"{base.settings.name[:20].rstrip('-')}-race-{os.getpid() % 100000:05d}"
    folder = Path(tempfile.mkdtemp(prefix="lab-race-"))
    s = settings_mod.validate(settings_mod.Settings(name=name, tls_port=_free_port(), mtls_port=_free_port(),
                                                    image=base.settings.image, revocation="both"))
    lab = Lab(folder / "lab", s, "")
    races: list[Race] = []
    try:
        progress(f"a lab of its own for the race: {name} (removed afterwards)")
        lifecycle.up(lab, progress=progress)
        engine = runtime.connect()
        conf = lab.dir / layout.SERVERS["mtls"][0] / layout.NGINX_CONF
        ca_file = layout.certs_dir(lab.dir) / layout.SERVER_CA_CRT
        for i, mode in enumerate(chosen):
            progress(f"{mode}: {race.WHAT[mode]}")
            conf.write_text(_mtls_conf(lab, mode))
            servers.sync(lab, engine, ["mtls"], always=True)
            student = f"race-{i}"
            issued, _ = students.add(lab.dir, s, [student], ttl=ttl if mode == "short-lived" else None)
            runtime.ask_responder(engine, name)              # the responder knows the new certificate
            folder_ = issued[0].directory
            client = race._Client(s.connect_address(), s.mtls_port, ca_file,
                                  folder_ / layout.student_file(student, "crt"),
                                  folder_ / layout.student_file(student, "key"))

            def revoke(mode: Mode = mode, student: str = student) -> None:
                if mode == "short-lived":
                    return                                   # nothing to do: it ends by itself
                students.revoke(lab.dir, student)            # the CA database, the CRL, the responder's index
                if mode in ("ocsp", "ocsp-cache"):
                    runtime.ask_responder(engine, name)
                if mode == "crl-reload":
                    servers.sync(lab, engine, ["mtls"], always=True)

            bound = float(ttl + 5) if mode == "short-lived" else wait
            try:
                outcomes = race.measure(client, revoke, bound)
            except RuntimeError as e:
                raise LabError(f"lab race, {mode}: {e}") from None
            finally:
                client.close()
            what = race.WHAT[mode] + (f", {ttl} s after it was issued" if mode == "short-lived" else "")
            races.append(race.Race(mode, what, bound, outcomes))
            ca.write_names(lab.dir)
    finally:
        try:
            runtime.down(name)
        except LabError:
            pass
        shutil.rmtree(folder, ignore_errors=True)
    return RaceReport(races, name, s.image, ttl)
