"""The lab's life: up and render (certificates, configuration, containers,
under the lab's lock, rolled back when they fail), down, status, logs, the
preflight. Returned as reports; nothing is printed here."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, TypeAlias

from lab.app.selection import (
    Expiry,
    Lab,
    Progress,
    first_expiry,
    lab_dir_for,
    name_for,
    quiet,
    refuse_elsewhere,
    select,
)
from lab.app.servers import Reloaded, loaded_states, note_loaded, sync
from lab.core import layout, trace
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from lab.app.doctor import Check
    from lab.config.render import RenderResult
    from lab.core.layout import Server
    from lab.engine.loaded import Kind, LoadedState
    from lab.engine.runtime import LabSummary, ServerStatus, UpResult
    from lab.engine.seam import Engine
    from lab.pki.certs import CertsResult, StagedCertificates

    # What `up` does once the lab directory is written: start the containers, bring running servers up to date.
    Started: TypeAlias = tuple[UpResult, list[Reloaded]]
    Starter: TypeAlias = Callable[[RenderResult, CertsResult], Started]


@dataclass(frozen=True)
class BuildReport:
    lab: Lab
    certs: CertsResult
    rendered: RenderResult


@dataclass(frozen=True)
class UpReport(BuildReport):
    changed: bool = False          # False: it was already up with this configuration
    pulled: bool = False
    servers: list[ServerStatus] = field(default_factory=list)
    expiry: Optional[Expiry] = None
    seconds: float = 0.0
    reloaded: list[Reloaded] = field(default_factory=list)   # running servers brought up to their files


def _stage_certificates(lab: Lab, regenerate: bool) -> StagedCertificates | None:
    """Start gen-certs.sh now when new certificates are needed, so OpenSSL works
    while Python loads the Docker SDK; None when not needed (or when it cannot
    start here: the ordinary path then reports why)."""
    from lab.pki import certs

    parent = lab.dir.absolute().parent
    if not certs.needs_generation(lab.dir, regenerate) or not parent.is_dir():
        return None
    try:
        return certs.StagedCertificates(parent, lab.settings)
    except (OSError, LabError):
        return None


def _make_lab_dir(lab_dir: Path) -> None:
    try:
        lab_dir.mkdir(parents=True, exist_ok=True)
        probe = lab_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LabError(f"lab directory {lab_dir} is not writable ({e.strerror})",
                       hint="choose another with --dir, or fix its permissions") from None


def _confirm_new_cas(lab: Lab, regenerate: bool, discard_students: bool) -> None:
    """New CAs mean every student's certificate goes (signed by a CA that no
    longer exists): never without the instructor saying so."""
    from lab.pki import certs, students
    from lab.teach import exercise

    running = exercise.current(lab.dir) if regenerate else None
    if running is not None:
        # Its reset would put back certificates of the old CAs into a lab that has new ones.
        raise UsageError(f"exercise {running.id!r} is running in this lab: end it before making new CAs",
                         hint=f"lab exercise reset{lab.selector}, then lab up --regenerate")
    if discard_students or not certs.needs_generation(lab.dir, regenerate):
        return
    found = [s.name for s in students.list_students(lab.dir)]
    if found:
        shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        why = "--regenerate makes" if regenerate else f"{layout.CERTS_DIR}/ is empty, so lab would make"
        raise UsageError(f"{why} new CAs, which would delete the certificates of {len(found)} student(s): {shown}",
                         hint="add --discard-students to confirm (they then need new ones: lab client add); "
                              "or keep the CAs: leave out --regenerate")


def _build(lab: Lab, regenerate: bool, progress: Progress, start: Starter | None = None,
           pending: StagedCertificates | None = None,
           prepare: Callable[[], None] | None = None,
           cleanup: Callable[[], None] | None = None) -> tuple[CertsResult, RenderResult, Started | None]:
    """Certificates, then configuration, then (for up) `start(rendered, certs)`,
    then the settings, under the lab's lock. A lab directory this run created
    is removed again if any step fails or is interrupted. `prepare()`, first
    under the lock, starts what can go on meanwhile; `cleanup()` undoes it
    when a step fails or is interrupted (also one inside prepare itself)."""
    from lab.config import render
    from lab.core import settings
    from lab.core.locking import lab_lock
    from lab.pki import ca, certs

    with trace.span("up: leftovers of a killed run looked for"):
        for where in (lab.dir.absolute().parent, lab.dir):      # what a killed run left beside and in the lab: CA keys
            certs.clean_stale_staging(where)
    try:
        with lab_lock(lab.name):
            made_dir = not lab.dir.exists()
            try:
                _make_lab_dir(lab.dir)
                if prepare:
                    prepare()
                progress("certificates…")
                with trace.span("up: certificates (gen-certs.sh, or checked)"):
                    cert_result = certs.ensure(lab.dir, lab.settings, regenerate=regenerate, pending=pending)
                    # Missing, unreadable, behind the CA database or running out: made anew from the database.
                    ca.ensure_fresh_crl(lab.dir)
                    if lab.settings.ocsp:       # the responder's own key and certificate, and its index
                        certs.ensure_ocsp_signer(lab.dir, lab.settings)
                        ca.write_ocsp_index(lab.dir)
                with trace.span("up: configuration rendered (Jinja)"):
                    rendered = render.render_lab(lab.dir, lab.settings)
                started = start(rendered, cert_result) if start else None
                with trace.span("up: lab.yml saved"):
                    settings.save(lab.dir, lab.settings)
            except BaseException:
                if cleanup:
                    cleanup()
                if made_dir:
                    shutil.rmtree(lab.dir, ignore_errors=True)
                raise
    finally:
        if pending is not None and pending.tmp.exists():
            pending.discard()
    return cert_result, rendered, started


def render(lab: Lab, regenerate: bool = False, progress: Progress = quiet,
           discard_students: bool = False) -> BuildReport:
    """The lab directory (certificates, nginx configs, compose file), nothing started."""
    _confirm_new_cas(lab, regenerate, discard_students)
    cert_result, rendered, _ = _build(lab, regenerate, progress)
    return BuildReport(lab, cert_result, rendered)


def up(lab: Lab, regenerate: bool = False, timeout: float = 30.0, progress: Progress = quiet,
       discard_students: bool = False) -> UpReport:
    """Certificates, configuration, both containers; returns when both servers answer TLS,
    the mTLS server with the revocation list on disk."""
    from lab.app import doctor
    from lab.engine import runtime
    from lab.engine.network import NetworkAhead

    started = time.monotonic()
    with trace.span("up: students checked, gen-certs.sh started in the background"):
        _confirm_new_cas(lab, regenerate, discard_students)
        pending = _stage_certificates(lab, regenerate)
    try:
        with trace.span("up: preflight (engine, image, ports)"):
            engine = doctor.preflight(lab.dir, lab.settings)   # a blocked lab up writes nothing
    except BaseException:
        if pending is not None:
            pending.discard()
        raise
    ca_file = layout.certs_dir(lab.dir) / layout.SERVER_CA_CRT
    ahead: list[NetworkAhead] = []

    def prepare() -> None:
        """A cold lab up: the network is made while gen-certs.sh finishes and the files are rendered."""
        if pending is not None:
            from lab.config import render

            with trace.span("up: the network's name and labels (compose template)"):
                name, labels = render.network(lab.dir, lab.settings)
            network = NetworkAhead(engine, lab.name, name, labels)
            ahead.append(network)         # known to cleanup() before its thread starts
            network.start()

    def cleanup() -> None:
        for network in ahead:
            network.undo()

    def start(rendered: RenderResult, cert_result: CertsResult) -> Started:
        progress("containers…")
        with trace.span("up: containers (runtime.up)"):
            result = runtime.up(rendered.compose_file, ca_file, timeout=timeout, progress=progress, engine=engine,
                                ahead=ahead[0] if ahead else None)
        if result.changed:   # new containers read the files on disk as they started
            with trace.span("up: what each new server loaded, noted"):
                note_loaded(lab.dir, engine, lab.name)
            return result, []
        # Already running: bring each server up to its files (an edit, a new CRL), without downtime.
        with trace.span("up: running servers brought up to their files"):
            return result, sync(lab, engine)

    cert_result, rendered, done = _build(lab, regenerate, progress, start, pending, prepare, cleanup)
    assert done is not None    # _build ran `start`
    result, reloaded = done
    with trace.span("up: status of the servers and the first expiry, for the report"):
        servers = runtime.status(engine, lab.name, ca_file, ocsp=lab.settings.ocsp)
        expiry = first_expiry(lab.dir)
    return UpReport(lab, cert_result, rendered, changed=result.changed, pulled=result.pulled, servers=servers,
                    expiry=expiry, seconds=time.monotonic() - started, reloaded=reloaded)


@dataclass(frozen=True)
class DownReport:
    name: str
    containers: tuple[str, ...]
    networks: tuple[str, ...]
    deleted: Optional[Path] = None


def _check_purge(lab_dir: Path, lab_name: str, engine: Engine) -> None:
    """--purge deletes a directory only when lab made it for this very lab:
    its lab.yml names this lab, and no other lab's containers were made from it."""
    from lab.core import settings
    from lab.engine import runtime

    saved = (lab_dir / layout.SETTINGS_FILE)
    if not saved.is_file():
        raise UsageError(f"{lab_dir} is not a lab directory (no {layout.SETTINGS_FILE}): not deleting it",
                         hint="lab down --purge deletes only a directory that lab up or lab render made")
    try:
        owner = settings.load_saved(lab_dir).get("name", layout.DEFAULT_NAME)
    except UsageError as e:
        raise UsageError(f"{saved} cannot be read ({e}): not deleting {lab_dir}") from None
    if owner != lab_name:
        raise UsageError(f"{lab_dir} belongs to lab {owner!r}, not {lab_name!r}: not deleting it",
                         hint=f"lab down --dir {lab_dir} (without --name) takes down the lab it belongs to")
    other = runtime.lab_for_dir(engine, lab_dir)
    if other is not None and other != lab_name:
        raise UsageError(f"lab {other!r} runs from {lab_dir}: not deleting it",
                         hint=f"lab down --name {other} first")
    theirs = sorted(p.name + ("/" if p.is_dir() else "") for p in lab_dir.iterdir() if not _made_by_lab(p))
    if theirs:
        shown = ", ".join(theirs[:6]) + (f" and {len(theirs) - 6} more" if len(theirs) > 6 else "")
        raise UsageError(f"{lab_dir} holds what lab did not make ({shown}): not deleting anything",
                         hint=f"lab down --dir {lab_dir} (without --purge) takes the lab down and deletes nothing; "
                              "move your files out first to purge")
    nested = sorted(str(p.parent.relative_to(lab_dir)) for p in lab_dir.glob(f"*/**/{layout.SETTINGS_FILE}"))
    if nested:
        raise UsageError(f"{lab_dir} holds another lab ({', '.join(nested)}): not deleting it",
                         hint=f"lab down --purge --dir {lab_dir / nested[0]} first")


def _lab_entries() -> frozenset[str]:
    """What lab makes at the top of a lab directory, and nothing else."""
    from lab.core import cache
    from lab.pki import access
    from lab.teach import exercise

    return frozenset({layout.SETTINGS_FILE, layout.COMPOSE_FILE, cache.FILE, layout.CERTS_DIR, layout.DEMO_DIR,
                      layout.CRL_DIR, layout.CLIENTS_DIR, layout.PASSWORDS_DIR, layout.HANDOUTS_DIR,
                      exercise.STATE_DIR, exercise.WORK_DIR, exercise.HISTORY_FILE, access.ACCESS_FILE,
                      layout.OCSP_DIR, layout.GALLERY_DIR,
                      *(folder for folder, _ in layout.SERVERS.values())})


def _made_by_lab(path: Path) -> bool:
    """One of lab's own entries (as lab makes it: a real folder or file, never a link), or a
    temporary file lab writes by rename (.NAME.RANDOM.part)."""
    if path.is_symlink():
        return False
    return path.name in _lab_entries() or (path.name.startswith(".") and path.name.endswith(".part"))


def _purge(lab_dir: Path) -> None:
    """Delete what lab made in the lab directory (checked by _check_purge), then the folder itself."""
    for entry in lab_dir.iterdir():
        if _made_by_lab(entry):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    lab_dir.rmdir()


def down(directory: Optional[Path], name: Optional[str], purge: bool = False) -> DownReport:
    """Remove the lab's containers and network, found by label; with purge, its
    directory too, and only if it is that lab's (checked before anything is removed)."""
    from lab.core.locking import lab_lock
    from lab.engine import runtime
    from lab.pki import certs

    lab_dir = lab_dir_for(directory, name)
    if purge and lab_dir.is_symlink():
        raise UsageError(f"{lab_dir} is a symbolic link: not deleting through it (nothing was taken down)",
                         hint=f"lab down --purge --dir {lab_dir.resolve()}")
    engine = runtime.connect()
    lab_name = name_for(lab_dir, name, engine)
    refuse_elsewhere(engine, lab_name, lab_dir, "down")
    for where in (lab_dir.absolute().parent, lab_dir):
        certs.clean_stale_staging(where)
    purge = purge and lab_dir.is_dir()
    if purge:
        _check_purge(lab_dir, lab_name, engine)
    with lab_lock(lab_name):
        result = runtime.down(lab_name, engine=engine)
        if purge:
            _purge(lab_dir)
    return DownReport(lab_name, result.containers, result.networks, lab_dir if purge else None)


@dataclass(frozen=True)
class StatusReport:
    name: str
    dir: Optional[Path]        # None when the directory is gone
    servers: list[ServerStatus]
    expiry: Optional[Expiry]
    loaded: dict[Server, dict[Kind, LoadedState] | None] = field(default_factory=dict)   # per server, per kind of file
    urls: list[str] = field(default_factory=list)     # room mode: what students open
    files: dict[Server, dict[Kind, str]] = field(default_factory=dict)  # per server, per kind: the file (lab/engine/loaded.py)
    unlisted: int = 0      # revocations of the CA database the CRL on disk does not list
    turned_off: list[str] = field(default_factory=list)   # the lesson's defences the configuration lacks

    @property
    def all_running(self) -> bool:
        return all(s.state == "running" for s in self.servers)


def status(directory: Optional[Path], name: Optional[str]) -> StatusReport:
    from lab.engine import loaded, runtime
    from lab.pki import ca
    from lab.teach import defences

    lab_dir = lab_dir_for(directory, name)   # bad input fails before the engine is asked
    saved = (lab_dir / layout.SETTINGS_FILE).is_file()
    lab = select(directory, name) if saved else None
    engine = runtime.connect()
    lab_name = lab.name if lab else name_for(lab_dir, name, engine)
    refuse_elsewhere(engine, lab_name, lab_dir, "status")
    servers = runtime.status(engine, lab_name, layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT,
                             ocsp=bool(lab and lab.settings.ocsp))
    here = lab_dir if lab_dir.is_dir() else None
    states = loaded_states(lab_dir, engine, lab_name) if here else {}
    return StatusReport(lab_name, here, servers, first_expiry(lab_dir) if here else None, states,
                        lab.settings.student_urls() if lab else [],
                        {server: loaded.files(server) for server in layout.SERVERS},
                        len(ca.unlisted_revocations(lab_dir)) if here else 0,
                        [d.name for d in defences.turned_off(lab_dir)] if here else [])


def all_labs() -> list[LabSummary]:
    from lab.engine import runtime

    return runtime.all_labs(runtime.connect())


def logs(directory: Optional[Path], name: Optional[str], server: Optional[str], tail: int,
         follow: bool) -> Iterator[tuple[str, str]]:
    """(server, line) pairs of nginx's logs; both servers merged when none is named."""
    from lab.engine import runtime

    servers = layout.servers_named(server)
    lab_dir = lab_dir_for(directory, name)
    engine = runtime.connect()
    lab_name = name_for(lab_dir, name, engine)
    refuse_elsewhere(engine, lab_name, lab_dir, "logs")
    return runtime.logs(engine, lab_name, servers, tail=tail, follow=follow)


def doctor(lab: Lab, hours: float) -> list[Check]:
    from lab.app import doctor as checks

    return checks.run(lab.dir, lab.settings, hours=hours)[1]
