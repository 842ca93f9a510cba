"""The use cases: what each command does, start to end, returned as data.

lab/cli.py declares the commands and hands what these functions return to
lab/output.py; the stage modules (certs -> render -> runtime -> verify, with
students, images and doctor beside them) do the work. This module decides
*which* lab a command is about (`select`, the one place settings are
resolved), holds each lab's lock while it is changed, and rolls back what a
failed `lab up` made. It never prints: progress goes through a callback.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from lab import layout
from lab.errors import LabError, UsageError, VerificationFailed

if TYPE_CHECKING:
    from lab.certs import CertsResult
    from lab.render import RenderResult
    from lab.settings import Settings
    from lab.students import Student

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- which lab


@dataclass(frozen=True)
class Lab:
    """A lab directory and its settings, as the command line selected them."""

    dir: Path
    settings: Settings
    selector: str = ""      # " --dir D" / " --name N": how to name this lab again in a hint

    @property
    def name(self) -> str:
        return self.settings.name


def lab_dir_for(directory: Optional[Path], name: Optional[str]) -> Path:
    """--dir, else ./NAME, else ./mtls-lab; never a file."""
    from lab.settings import validate_name

    if name is not None:
        validate_name(name)
    path = directory if directory is not None else Path(name or layout.DEFAULT_NAME)
    if path.exists() and not path.is_dir():
        raise UsageError(f"lab directory {path} is a file: choose another with --dir")
    return path


def _selector(directory: Optional[Path], lab_dir: Path, name: Optional[str]) -> str:
    if directory is not None:
        return f" --dir {lab_dir}"
    return f" --name {name}" if name else ""


def select(directory: Optional[Path] = None, name: Optional[str] = None, *, require: bool = False,
           port_offset: Optional[int] = None, **given) -> Lab:
    """The lab a command is about: its directory and its settings, resolved
    once: flag > LAB_* variable (typer reads both) > the directory's lab.yml >
    defaults. `require`: the lab must have been made (`lab up` / `lab render`)."""
    from lab import settings

    lab_dir = lab_dir_for(directory, name)
    if require and not (lab_dir / layout.SETTINGS_FILE).is_file():
        raise LabError(f"no lab in {lab_dir} (no {layout.SETTINGS_FILE})",
                       hint="run `lab up` first, or point --dir at the lab")
    given = {k: v for k, v in given.items()}
    if given.get("sans") is not None:
        given["sans"] = tuple(given["sans"])
    s = settings.resolve(lab_dir, {"name": name, **given}, port_offset=port_offset)
    return Lab(lab_dir, s, _selector(directory, lab_dir, name))


def _lab_name(lab_dir: Path, name: Optional[str], client) -> str:
    """--name, else the directory's saved name, else the lab whose containers
    carry this directory's label (the directory may be gone), else the default."""
    from lab import runtime, settings

    if name:
        return name
    if lab_dir.is_dir():
        saved = settings.load_saved(lab_dir).get("name")
        if saved:
            return saved
    return runtime.lab_for_dir(client, lab_dir) or layout.DEFAULT_NAME


def student_host(s) -> str:
    """The name students use for the instructor's machine: the first extra DNS name, else localhost."""
    return next((x.split(":", 1)[1] for x in s.sans if x.startswith("DNS:")), "localhost")


@dataclass(frozen=True)
class Expiry:
    days: int
    file: str

    @property
    def soon(self) -> bool:
        return self.days < layout.EXPIRY_WARN_DAYS


def first_expiry(lab_dir: Path) -> Optional[Expiry]:
    from lab import certs

    found = certs.expiries(layout.certs_dir(lab_dir)) if lab_dir.is_dir() else {}
    if not found:
        return None
    file, when = min(found.items(), key=lambda kv: kv[1])
    return Expiry((when - now()).days, file)


# --------------------------------------------------------------------------- up, render


@dataclass(frozen=True)
class BuildReport:
    lab: Lab
    certs: CertsResult
    rendered: RenderResult


@dataclass(frozen=True)
class UpReport(BuildReport):
    changed: bool = False          # False: it was already up with this configuration
    pulled: bool = False
    servers: list = field(default_factory=list)
    expiry: Optional[Expiry] = None
    seconds: float = 0.0


def _stage_certificates(lab: Lab, regenerate: bool):
    """Start gen-certs.sh now when new certificates are needed, so OpenSSL works
    while Python loads the Docker SDK; None when not needed (or when it cannot
    start here: the ordinary path then reports why)."""
    from lab import certs

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


def _build(lab: Lab, regenerate: bool, progress: Progress, start=None, pending=None):
    """Certificates, then configuration, then (for up) `start(rendered, certs)`,
    then the settings, under the lab's lock. A lab directory this run created
    is removed again if any step fails or is interrupted."""
    from lab import certs, render, settings
    from lab.locking import lab_lock

    try:
        with lab_lock(lab.name):
            made_dir = not lab.dir.exists()
            try:
                _make_lab_dir(lab.dir)
                progress("certificates…")
                cert_result = certs.ensure(lab.dir, lab.settings, regenerate=regenerate, pending=pending)
                rendered = render.render_lab(lab.dir, lab.settings)
                started = start(rendered, cert_result) if start else None
                settings.save(lab.dir, lab.settings)
            except BaseException:
                if made_dir:
                    shutil.rmtree(lab.dir, ignore_errors=True)
                raise
    finally:
        if pending is not None and pending.tmp.exists():
            pending.discard()
    return cert_result, rendered, started


def render(lab: Lab, regenerate: bool = False, progress: Progress = _quiet) -> BuildReport:
    """The lab directory (certificates, nginx configs, compose file), nothing started."""
    cert_result, rendered, _ = _build(lab, regenerate, progress)
    return BuildReport(lab, cert_result, rendered)


def up(lab: Lab, regenerate: bool = False, timeout: float = 30.0, progress: Progress = _quiet) -> UpReport:
    """Certificates, configuration, both containers; returns when both servers answer TLS."""
    from lab import doctor, runtime, students

    started = time.monotonic()
    pending = _stage_certificates(lab, regenerate)
    try:
        client = doctor.preflight(lab.dir, lab.settings)   # a blocked lab up writes nothing
    except BaseException:
        if pending is not None:
            pending.discard()
        raise
    ca_file = layout.certs_dir(lab.dir) / layout.SERVER_CA_CRT

    def start(rendered, cert_result):
        crl_renewed = students.ensure_fresh_crl(lab.dir)
        progress("containers…")
        result = runtime.up(rendered.compose_file, ca_file, timeout=timeout, progress=progress, client=client)
        if crl_renewed and not result.changed:
            runtime.reload(client, lab.name, "mtls")  # the running server picks up the renewed CRL
        return result

    cert_result, rendered, result = _build(lab, regenerate, progress, start, pending)
    return UpReport(lab, cert_result, rendered, changed=result.changed, pulled=result.pulled,
                    servers=runtime.status(client, lab.name, ca_file), expiry=first_expiry(lab.dir),
                    seconds=time.monotonic() - started)


# --------------------------------------------------------------------------- down


@dataclass(frozen=True)
class DownReport:
    name: str
    containers: tuple
    networks: tuple
    deleted: Optional[Path] = None


def down(directory: Optional[Path], name: Optional[str], purge: bool = False) -> DownReport:
    """Remove the lab's containers and network, found by label; with purge, its directory too."""
    from lab import runtime
    from lab.locking import lab_lock

    lab_dir = lab_dir_for(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    with lab_lock(lab_name):
        result = runtime.down(lab_name, client=client)
    deleted = None
    if purge and lab_dir.is_dir():
        if not ((lab_dir / layout.SETTINGS_FILE).exists() or (lab_dir / layout.COMPOSE_FILE).exists()):
            raise UsageError(f"{lab_dir} does not look like a lab directory (no {layout.SETTINGS_FILE}): not deleting it")
        shutil.rmtree(lab_dir)
        deleted = lab_dir
    return DownReport(lab_name, result.containers, result.networks, deleted)


# --------------------------------------------------------------------------- status, logs, doctor


@dataclass(frozen=True)
class StatusReport:
    name: str
    dir: Optional[Path]        # None when the directory is gone
    servers: list
    expiry: Optional[Expiry]

    @property
    def all_running(self) -> bool:
        return all(s.state == "running" for s in self.servers)


def status(directory: Optional[Path], name: Optional[str]) -> StatusReport:
    from lab import runtime

    lab_dir = lab_dir_for(directory, name)   # bad input fails before the engine is asked
    saved = (lab_dir / layout.SETTINGS_FILE).is_file()
    lab = select(directory, name) if saved else None
    client = runtime.connect()
    lab_name = lab.name if lab else _lab_name(lab_dir, name, client)
    servers = runtime.status(client, lab_name, layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT)
    here = lab_dir if lab_dir.is_dir() else None
    return StatusReport(lab_name, here, servers, first_expiry(lab_dir) if here else None)


def all_labs() -> list:
    from lab import runtime

    return runtime.all_labs(runtime.connect())


def logs(directory: Optional[Path], name: Optional[str], server: Optional[str], tail: int,
         follow: bool) -> Iterator[tuple[str, str]]:
    """(server, line) pairs of nginx's logs; both servers merged when none is named."""
    from lab import runtime

    if server is not None and server not in layout.SERVERS:
        raise UsageError(f"unknown server {server!r}: use tls or mtls (or nothing for both)")
    lab_dir = lab_dir_for(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    return runtime.logs(client, lab_name, [server] if server else list(layout.SERVERS), tail=tail, follow=follow)


def doctor(lab: Lab, hours: float) -> list:
    from lab import doctor as checks

    return checks.run(lab.dir, lab.settings, hours=hours)[1]


# --------------------------------------------------------------------------- verify, curl


@dataclass(frozen=True)
class VerifyReport:
    results: list
    failure: Optional[LabError] = None


def _not_running(lab_name: str) -> str:
    """Which of the lab's containers are not running, when the engine can tell."""
    from lab import runtime

    try:
        servers = runtime.status(runtime.connect(), lab_name, None)
    except LabError:
        return ""
    if all(st.state == "missing" for st in servers):
        return f"lab {lab_name} is not running: `lab up` starts it"
    down_ = [f"{st.container} is {st.state}" for st in servers if st.state != "running"]
    return ("; ".join(down_) + ": `lab up` repairs it") if down_ else ""


def _host(host: Optional[str]) -> Optional[str]:
    from lab.settings import validate_san

    return None if host is None else validate_san(host).split(":", 1)[1]


def verify(lab: Lab, only: Optional[list] = None, host: Optional[str] = None,
           as_student: Optional[str] = None) -> VerifyReport:
    from lab import verify as checks

    results = checks.run(lab.dir, lab.settings, only=only, host=_host(host), as_student=as_student)
    failed = [r for r in results if not r.passed]
    if not failed:
        return VerifyReport(results)
    hint = ""
    if any(r.observation.kind == "connect-error" for r in failed):
        hint = _not_running(lab.name) or "is the lab running? `lab up` starts it"
    return VerifyReport(results, VerificationFailed(
        f"{len(failed)} of {len(results)} scenarios did not behave as expected: "
        + ", ".join(r.scenario for r in failed), hint=hint))


def curl(lab: Lab, scenario: str, host: Optional[str] = None, as_student: Optional[str] = None) -> str:
    from lab import verify as checks

    sc = checks.pick(checks.scenarios(lab.dir, as_student), [scenario])[0]
    return checks.curl_command(sc, lab.dir, lab.settings, _host(host))


def try_next(lab: Lab) -> list[tuple[str, str]]:
    """The commands to try after `lab up`, with what each shows."""
    from lab import verify as checks

    where = lab.selector
    hints = [(f"lab verify{where}", "every scenario, what it shows, ✓/✗")]
    hints += [(checks.curl_command(sc, lab.dir, lab.settings), "") for sc in checks.SCENARIOS
              if sc.name in ("trusted", "client-cert", "no-cert")]
    hints += [(f"lab logs mtls{where}", "what the server saw on each request"), (f"lab down{where}", "")]
    return hints


# --------------------------------------------------------------------------- students


def add_students(lab: Lab, names: list, from_file: Optional[Path], force: bool, legacy_p12: bool,
                 progress: Progress = _quiet) -> list:
    from lab import students
    from lab.locking import lab_lock

    wanted = list(names or []) + (students.read_roster(from_file) if from_file else [])
    if not wanted:
        raise UsageError("no student names: give NAME… or --from-file FILE")
    with lab_lock(lab.name):
        progress("issuing…")
        issued = students.add(lab.dir, lab.settings, wanted, force=force, legacy_p12=legacy_p12,
                              host=student_host(lab.settings))
        if force:  # a re-issued student's old certificate was revoked: have nginx use the new CRL
            _reload_mtls(lab.name)
    return issued


def _reload_mtls(lab_name: str) -> bool:
    """Reload the mTLS server if the lab runs; False when it does not (or no engine answers)."""
    from lab import runtime
    from lab.errors import DockerUnavailable

    try:
        client = runtime.connect()
    except DockerUnavailable:
        return False
    return runtime.reload(client, lab_name, "mtls")


def list_students(lab: Lab) -> list:
    from lab import students

    return students.list_students(lab.dir)


@dataclass(frozen=True)
class RevokeReport:
    student: Student
    enforced: bool           # False: the lab is not running
    observed: str = ""       # what the server answered the revoked certificate
    curl: str = ""


def revoke(lab: Lab, name: str) -> RevokeReport:
    """Revoke a student's certificate and have the running mTLS server enforce
    it: the reload returns once no old nginx worker is left, then one request
    with that very certificate proves it is refused."""
    from lab import students, verify as checks
    from lab.locking import lab_lock

    with lab_lock(lab.name):
        revoked = students.revoke(lab.dir, name)
        reloaded = _reload_mtls(lab.name)
    if not reloaded:
        return RevokeReport(revoked, False)
    sc = checks.revoked_scenario(revoked)
    result = checks.run_one(sc, lab.dir, lab.settings)
    if not result.passed:
        raise LabError(f"nginx reloaded but still does not refuse {name}: {result.observed}",
                       hint="lab logs mtls shows what the server saw")
    return RevokeReport(revoked, True, result.observed, result.curl)


def pki(lab: Lab) -> list:
    from lab import students

    return students.pki(lab.dir)


# --------------------------------------------------------------------------- images


def image_pull(lab: Lab, progress: Progress = _quiet) -> bool:
    from lab import images, runtime

    return images.ensure(runtime.connect(), lab.settings.image, progress)


def image_save(lab: Lab, file: Path, progress: Progress = _quiet) -> int:
    from lab import images, runtime

    return images.save(runtime.connect(), lab.settings.image, file, progress)


def image_load(file: Path, progress: Progress = _quiet) -> list:
    from lab import images, runtime

    return images.load(runtime.connect(), file, progress)
