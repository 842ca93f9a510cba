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
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from lab.core import layout
from lab.core.errors import LabError, UsageError, VerificationFailed

if TYPE_CHECKING:
    from lab.pki.certs import CertsResult
    from lab.config.render import RenderResult
    from lab.core.settings import Settings
    from lab.pki.students import Student

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
    from lab.core.settings import validate_name

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
    from lab.core import settings

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
    from lab.engine import runtime
    from lab.core import settings

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
    from lab.pki import certs

    found = certs.expiries(lab_dir) if lab_dir.is_dir() else {}
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
    reloaded: list = field(default_factory=list)   # Reloaded: running servers brought up to their files


def _stage_certificates(lab: Lab, regenerate: bool):
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


def _build(lab: Lab, regenerate: bool, progress: Progress, start=None, pending=None):
    """Certificates, then configuration, then (for up) `start(rendered, certs)`,
    then the settings, under the lab's lock. A lab directory this run created
    is removed again if any step fails or is interrupted."""
    from lab.pki import certs, students
    from lab.config import render
    from lab.core import settings
    from lab.core.locking import lab_lock

    try:
        with lab_lock(lab.name):
            made_dir = not lab.dir.exists()
            try:
                _make_lab_dir(lab.dir)
                progress("certificates…")
                cert_result = certs.ensure(lab.dir, lab.settings, regenerate=regenerate, pending=pending)
                # Missing, unreadable, behind the CA database or running out: made anew from the database.
                students.ensure_fresh_crl(lab.dir)
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


def render(lab: Lab, regenerate: bool = False, progress: Progress = _quiet,
           discard_students: bool = False) -> BuildReport:
    """The lab directory (certificates, nginx configs, compose file), nothing started."""
    _confirm_new_cas(lab, regenerate, discard_students)
    cert_result, rendered, _ = _build(lab, regenerate, progress)
    return BuildReport(lab, cert_result, rendered)


def up(lab: Lab, regenerate: bool = False, timeout: float = 30.0, progress: Progress = _quiet,
       discard_students: bool = False) -> UpReport:
    """Certificates, configuration, both containers; returns when both servers answer TLS,
    the mTLS server with the revocation list on disk."""
    from lab.app import doctor
    from lab.engine import runtime

    started = time.monotonic()
    _confirm_new_cas(lab, regenerate, discard_students)
    pending = _stage_certificates(lab, regenerate)
    try:
        client = doctor.preflight(lab.dir, lab.settings)   # a blocked lab up writes nothing
    except BaseException:
        if pending is not None:
            pending.discard()
        raise
    ca_file = layout.certs_dir(lab.dir) / layout.SERVER_CA_CRT

    def start(rendered, cert_result):
        progress("containers…")
        result = runtime.up(rendered.compose_file, ca_file, timeout=timeout, progress=progress, client=client)
        if result.changed:   # new containers read the files on disk as they started
            _note_loaded(lab.dir, client, lab.name)
            return result, []
        # Already running: bring each server up to its files (an edit, a new CRL), without downtime.
        return result, _sync(lab, client)

    cert_result, rendered, (result, reloaded) = _build(lab, regenerate, progress, start, pending)
    return UpReport(lab, cert_result, rendered, changed=result.changed, pulled=result.pulled,
                    servers=runtime.status(client, lab.name, ca_file), expiry=first_expiry(lab.dir),
                    seconds=time.monotonic() - started, reloaded=reloaded)


# --------------------------------------------------------------------------- what the servers run (lab/loaded.py)


def _note_loaded(lab_dir: Path, client, lab_name: str, servers=tuple(layout.SERVERS)) -> None:
    from lab.engine import loaded, runtime

    for server in servers:
        found = runtime.server_state(client, lab_name, server)
        loaded.note(lab_dir, server, found[0] if found else None)


def loaded_states(lab_dir: Path, client, lab_name: str) -> dict:
    """{server: {"config": "current"|"older", "crl": …} or None when it does not run}."""
    from lab.engine import loaded, runtime

    return {server: loaded.state(lab_dir, server, runtime.server_state(client, lab_name, server))
            for server in layout.SERVERS}


@dataclass(frozen=True)
class Reloaded:
    server: str
    files: tuple[str, ...]     # what it had an older version of (relative to the lab directory)


def _sync(lab: Lab, client, servers=tuple(layout.SERVERS), always: bool = False) -> list[Reloaded]:
    """Have each running server load what is on disk where it has not (or,
    with `always`, in any case): nginx -t inside the container first, so a
    broken edit raises ConfigError with nginx's own words and the old
    configuration keeps serving; then a reload without downtime."""
    from lab.engine import loaded, runtime

    done = []
    for server in servers:
        states = loaded.state(lab.dir, server, runtime.server_state(client, lab.name, server))
        stale = loaded.older(states)
        if states is None or not (stale or always):
            continue
        runtime.check_config(client, lab.name, server)
        runtime.reload(client, lab.name, server)
        _note_loaded(lab.dir, client, lab.name, [server])
        done.append(Reloaded(server, tuple(loaded.files(server)[k] for k in stale)))
    return done


def _require_running(client, lab: Lab, server: str, why: str) -> None:
    """LabError unless the server's container runs (a paused or stopped one is named as such)."""
    from lab.engine import runtime

    found = runtime.server_state(client, lab.name, server)
    if found is None or found[1] != "running":
        state = "not running" if found is None else found[1]
        raise LabError(f"the {server} server of lab {lab.name} is {state}: {why}",
                       hint=f"lab up{lab.selector} starts it (and keeps your edits)")


# --------------------------------------------------------------------------- hands-on: diff, reset, reload


def diff(lab: Lab, files: Optional[list] = None) -> list:
    """Each rendered file edited by hand, against what the templates render now."""
    from lab.config import render as rendering

    return rendering.edits(lab.dir, lab.settings, files)


@dataclass(frozen=True)
class ResetReport:
    restored: list            # (file, where the edited copy was kept)
    reloaded: list            # Reloaded: running servers now serving the lesson's files


def reset(lab: Lab, files: Optional[list] = None) -> ResetReport:
    """Back to the lesson's state: each edited file (all when none is named)
    gets the lesson's version, the edited copy kept beside it; running servers
    load it (when the engine answers)."""
    from lab.config import render as rendering
    from lab.engine import runtime
    from lab.core.errors import DockerUnavailable
    from lab.core.locking import lab_lock

    with lab_lock(lab.name):
        restored = rendering.reset(lab.dir, lab.settings, files)
        try:
            client = runtime.connect()
        except DockerUnavailable:
            return ResetReport(restored, [])
        return ResetReport(restored, _sync(lab, client))


def reload(lab: Lab, server: Optional[str] = None) -> list:
    """`nginx -t` on the server's files as they are, then a reload without
    downtime (both servers when none is named). A refused configuration raises
    ConfigError and the server keeps serving what it served."""
    from lab.engine import runtime
    from lab.core.locking import lab_lock

    if server is not None and server not in layout.SERVERS:
        raise UsageError(f"unknown server {server!r}: use tls or mtls (or nothing for both)")
    servers = [server] if server else list(layout.SERVERS)
    client = runtime.connect()
    for name in servers:
        _require_running(client, lab, name, "there is nothing to reload")
    with lab_lock(lab.name):
        return _sync(lab, client, servers, always=True)


# --------------------------------------------------------------------------- the handshake, shown


def handshake(lab: Lab, scenario: str = "client-cert", tls: Optional[str] = None, keylog: Optional[Path] = None,
              pcap: Optional[Path] = None, as_student: Optional[str] = None, host: Optional[str] = None):
    """One scenario's connection, every TLS message as it crossed (openssl s_client -msg);
    optionally its session keys (NSS key log) and a capture of it, for Wireshark."""
    from lab.engine import capture, runtime
    from lab.teach import handshake as hs, verify as checks
    from lab.pki import students

    checks.check_names([scenario])
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
        sc = checks.pick(checks.scenarios(lab.dir, as_student), [scenario])[0]
    client = runtime.connect()
    _require_running(client, lab, sc.server, "there is no handshake to show")
    address, hostname, port = checks.target(sc, lab.settings, _host(host))
    keylog_tmp = keylog.with_name(f".{keylog.name}.part") if keylog else None
    try:
        if keylog_tmp is not None:
            # Session secrets: made private before s_client appends a byte to it (like SSLKEYLOGFILE).
            os.close(os.open(keylog_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            os.chmod(keylog_tmp, 0o600)
        if pcap is not None:
            with capture.Capture(pcap, port):
                seen = hs.observe(lab.dir, sc, address, hostname, port, tls, keylog_tmp.absolute() if keylog else None)
        else:
            seen = hs.observe(lab.dir, sc, address, hostname, port, tls, keylog_tmp.absolute() if keylog else None)
        if keylog_tmp is not None:
            keylog_tmp.replace(keylog)    # empty when no keys were made (the handshake ended early)
    finally:
        if keylog_tmp is not None:
            keylog_tmp.unlink(missing_ok=True)
    return seen


# --------------------------------------------------------------------------- the demo


def demo_steps() -> list:
    from lab.teach import demo

    return demo.load()


def demo_ready(lab: Lab, progress: Progress = _quiet) -> Optional[UpReport]:
    """The demo runs on a running lab: start one when none is up (and say so: the report)."""
    from lab.engine import runtime

    if (lab.dir / layout.SETTINGS_FILE).is_file():
        client = runtime.connect()
        if all((found := runtime.server_state(client, lab.name, server)) and found[1] == "running"
               for server in layout.SERVERS):
            return None
    return up(lab, progress=progress)


@dataclass(frozen=True)
class Departures:
    """How the lab differs from the lesson a demo (or a reader) expects."""
    exercise: Optional[str]        # the id of the exercise running in it
    edited: list                   # files edited by hand (lab diff)


def departures(lab: Lab) -> Departures:
    from lab.teach import exercise
    from lab.config import render as rendering

    running = exercise.current(lab.dir)
    try:
        edited = [e.file for e in rendering.edits(lab.dir, lab.settings)]
    except LabError:            # an edit that is not text: it is an edit all the same
        edited = ["(a file that is not text)"]
    return Departures(running.id if running else None, edited)


def demo_step(lab: Lab, steps: list, number: int):
    """Run step `number` (1-based) for real; returns the Screen to show."""
    from lab.teach import demo

    step = steps[number - 1]
    subs = demo.values(lab.dir, lab.settings)
    if step.kind == "handshake":
        seen = handshake(lab, step.scenario)
        # The messages a lesson needs, one line each (lab handshake shows them all).
        shown = [m for m in _until_client_finished(seen.messages)
                 if m.type not in ("EncryptedExtensions", "ChangeCipherSpec")
                 and not (m.sender == "server" and m.type == "Finished")]
        lines = [f"{'→' if m.sender == 'client' else '←'} {m.sender:<6} {m.type:<19}{_short(m)}" for m in shown]
        lines.append(f"then HTTP {seen.http_status}; nginx's verdict: {seen.verdict}")
        cmd = ["openssl", "s_client", "-connect", seen.address, "-servername", "localhost", "-msg", "-CAfile",
               f"{subs['lab']}/certs/server-ca.crt", "-cert", f"{subs['lab']}/certs/client.crt",
               "-key", f"{subs['lab']}/certs/client.key"]
        return demo.screen(number, len(steps), step, subs, [cmd], demo.trim("\n".join(lines), ()))
    if step.kind == "revoke":
        return _demo_revocation(lab, steps, number, subs)
    cmd = [str(a).format_map(subs) for a in step.run]
    return demo.screen(number, len(steps), step, subs, [cmd], demo.run_command(cmd, step.keep))


def _until_client_finished(messages) -> list:
    out = []
    for m in messages:
        out.append(m)
        if m.sender == "client" and m.type in ("Finished", "Alert"):
            break
    return out


def _short(m) -> str:
    d = m.details
    if m.type == "CertificateRequest":
        return "[mTLS] CAs: " + "; ".join(d.get("certificate_authorities") or [])
    if m.type == "Certificate":
        return ("[mTLS] " if m.sender == "client" else "") + (d.get("subject") or "(empty)")
    if m.type == "CertificateVerify" and m.sender == "client":
        return "[mTLS] proves it holds the key"
    if m.type == "ServerHello":
        return f"{d.get('version')}, {d.get('cipher_suite')}"
    if m.type == "Alert":
        return f"{d.get('level')} {d.get('description')}"
    return ""


def _demo_revocation(lab: Lab, steps: list, number: int, subs: dict):
    """Issue (or re-issue) the throwaway student, revoke it live, and show the next request refused."""
    from lab.teach import demo

    name = demo.THROWAWAY
    exists = (layout.clients_dir(lab.dir) / name).is_dir()
    add_students(lab, [name], None, force=exists, legacy_p12=False)
    revoke(lab, name)
    folder = f"{subs['lab']}/clients/{name}"
    curl = ["curl", "-sS", "-i", "--cacert", f"{subs['lab']}/certs/server-ca.crt", "--cert", f"{folder}/{name}.crt",
            "--key", f"{folder}/{name}.key", f"https://localhost:{lab.settings.mtls_port}/hello-world.txt"]
    after = demo.run_command(curl, ("^HTTP/", "X-Client-Verify", "SSL certificate error"))
    said = [f"revoked {name}; the mTLS server reloaded without downtime"]
    return demo.screen(number, len(steps), steps[number - 1], subs,
                       [["lab", "client", "revoke", name], curl], said + after)


# --------------------------------------------------------------------------- break-and-fix exercises


@dataclass(frozen=True)
class ExerciseReport:
    exercise: object                 # lab.exercise.Exercise
    results: list = field(default_factory=list)   # verify Results of the exercise's checks
    config_error: str = ""           # nginx refused the files on disk (then results are not run)
    restored: list = field(default_factory=list)
    kept: list = field(default_factory=list)       # (file, where the student's edit of it was kept)

    @property
    def fixed(self) -> bool:
        return not self.config_error and bool(self.results) and all(r.passed for r in self.results)


def exercises(from_dir: Optional[Path] = None) -> list:
    """Every exercise, its texts with the default ports (the list selects no lab)."""
    from lab.teach import exercise

    ports = {"tls_port": str(layout.DEFAULT_TLS_PORT), "mtls_port": str(layout.DEFAULT_MTLS_PORT)}
    return [exercise.for_lab(ex, ports) for ex in exercise.load_all(from_dir)]


def _running_lab(lab: Lab):
    """An engine client, once both servers of the lab run (an exercise is decided by real requests)."""
    from lab.engine import runtime

    client = runtime.connect()
    for server in layout.SERVERS:
        _require_running(client, lab, server, "an exercise is checked with real requests")
    return client


def _running_exercise(lab: Lab):
    from lab.teach import exercise

    state = exercise.current(lab.dir)
    if state is None:
        raise UsageError("no exercise is running in this lab", hint=f"lab exercise list; lab exercise start ID{lab.selector}")
    source = Path(state.source)
    ex = exercise.load_file(source) if source.is_file() else exercise.find(state.id)
    return state, exercise.for_lab(ex, exercise.values(lab.dir, lab.settings))


def _judge_exercise(lab: Lab, ex, client) -> ExerciseReport:
    """Load what is on disk (nginx -t first), then the exercise's checks as real requests."""
    from dataclasses import replace

    from lab.teach import verify as checks
    from lab.core.errors import ConfigError

    try:
        _sync(lab, client)
    except ConfigError as e:
        return ExerciseReport(ex, config_error="\n".join(filter(None, [str(e), e.details])))
    available = checks.scenarios(lab.dir)
    results = []
    for check in ex.checks:
        found = [sc for sc in available if sc.name == check.scenario]
        if not found:
            continue      # e.g. `revoked` before anyone is revoked
        sc = found[0]
        if check.cert:
            sc = replace(sc, client_cert=(check.cert, check.key or check.cert))
        if check.tls:
            sc = replace(sc, max_tls=check.tls, shows=sc.shows + f" (a client that offers TLS {check.tls} at most)")
        try:
            results.append(checks.run_one(sc, lab.dir, lab.settings))
        except (OSError, ValueError) as e:   # a client certificate the exercise made is gone or broken
            raise LabError(f"check {check.label} cannot load its client certificate ({e})",
                           hint="lab exercise reset, then start the exercise again") from None
    return ExerciseReport(ex, results)


def exercise_start(lab: Lab, exercise_id: str, from_dir: Optional[Path] = None) -> ExerciseReport:
    """Make the exercise's mistake for real in the lab directory (every file it may
    write saved first), load it, and show the checks failing."""
    from lab.teach import exercise
    from lab.core.locking import lab_lock

    ex = exercise.for_lab(exercise.find(exercise_id, from_dir), exercise.values(lab.dir, lab.settings))
    client = _running_lab(lab)
    with lab_lock(lab.name):
        running = exercise.current(lab.dir)
        if running is not None:
            raise UsageError(f"exercise {running.id!r} is running in this lab",
                             hint=f"lab exercise check{lab.selector}, or lab exercise reset{lab.selector} to end it")
        state = exercise.snapshot(lab.dir, ex)
        try:
            exercise.apply(lab.dir, ex.breaks, exercise.values(lab.dir, lab.settings))
        except BaseException:
            exercise.restore(lab.dir, state, keep_edits=False)   # all of it lab's own writing
            raise
        exercise.note_written(lab.dir, state)
        report = _judge_exercise(lab, ex, client)
    return report


def exercise_check(lab: Lab) -> ExerciseReport:
    from lab.teach import exercise
    from lab.core.locking import lab_lock

    state, ex = _running_exercise(lab)
    client = _running_lab(lab)
    with lab_lock(lab.name):
        report = _judge_exercise(lab, ex, client)
        state.fixed = report.fixed
        exercise.save_state(lab.dir, state)
    return report


def exercise_hint(lab: Lab):
    return _running_exercise(lab)[1]


def exercise_solution(lab: Lab, apply: bool = False):
    """The reference fix; with apply, carried out and checked."""
    from lab.teach import exercise
    from lab.core.locking import lab_lock

    state, ex = _running_exercise(lab)
    if not apply:
        return ExerciseReport(ex)
    client = _running_lab(lab)
    with lab_lock(lab.name):
        exercise.apply(lab.dir, ex.solution, exercise.values(lab.dir, lab.settings))
        exercise.note_written(lab.dir, state)
        report = _judge_exercise(lab, ex, client)
        state.fixed = report.fixed
        exercise.save_state(lab.dir, state)
    return report


def exercise_reset(lab: Lab) -> ExerciseReport:
    """Back to the lesson's state: every file the exercise wrote restored (a student's
    edit of it kept beside it), what it made removed, running servers reloaded."""
    from lab.teach import exercise
    from lab.engine import runtime
    from lab.core.errors import DockerUnavailable
    from lab.core.locking import lab_lock

    state, ex = _running_exercise(lab)
    with lab_lock(lab.name):
        restored, kept = exercise.restore(lab.dir, state)
        try:
            _sync(lab, runtime.connect())
        except DockerUnavailable:
            pass
    return ExerciseReport(ex, restored=restored, kept=kept)


def exercise_status(lab: Lab) -> Optional[ExerciseReport]:
    """The running exercise and whether it is fixed now (checked live); None when none runs."""
    from lab.teach import exercise

    if exercise.current(lab.dir) is None:
        return None
    return exercise_check(lab)


# --------------------------------------------------------------------------- down


@dataclass(frozen=True)
class DownReport:
    name: str
    containers: tuple
    networks: tuple
    deleted: Optional[Path] = None


def _check_purge(lab_dir: Path, lab_name: str, client) -> None:
    """--purge deletes a directory only when lab made it for this very lab:
    its lab.yml names this lab, and no other lab's containers were made from it."""
    from lab.engine import runtime
    from lab.core import settings

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
    other = runtime.lab_for_dir(client, lab_dir)
    if other is not None and other != lab_name:
        raise UsageError(f"lab {other!r} runs from {lab_dir}: not deleting it",
                         hint=f"lab down --name {other} first")


def down(directory: Optional[Path], name: Optional[str], purge: bool = False) -> DownReport:
    """Remove the lab's containers and network, found by label; with purge, its
    directory too, and only if it is that lab's (checked before anything is removed)."""
    from lab.engine import runtime
    from lab.core.locking import lab_lock

    lab_dir = lab_dir_for(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    purge = purge and lab_dir.is_dir()
    if purge:
        _check_purge(lab_dir, lab_name, client)
    with lab_lock(lab_name):
        result = runtime.down(lab_name, client=client)
        if purge:
            shutil.rmtree(lab_dir)
    return DownReport(lab_name, result.containers, result.networks, lab_dir if purge else None)


# --------------------------------------------------------------------------- status, logs, doctor


@dataclass(frozen=True)
class StatusReport:
    name: str
    dir: Optional[Path]        # None when the directory is gone
    servers: list
    expiry: Optional[Expiry]
    loaded: dict = field(default_factory=dict)   # per server: what it runs vs the files (lab/loaded.py)
    urls: list = field(default_factory=list)     # room mode: what students open

    @property
    def all_running(self) -> bool:
        return all(s.state == "running" for s in self.servers)


def status(directory: Optional[Path], name: Optional[str]) -> StatusReport:
    from lab.engine import runtime

    lab_dir = lab_dir_for(directory, name)   # bad input fails before the engine is asked
    saved = (lab_dir / layout.SETTINGS_FILE).is_file()
    lab = select(directory, name) if saved else None
    client = runtime.connect()
    lab_name = lab.name if lab else _lab_name(lab_dir, name, client)
    servers = runtime.status(client, lab_name, layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT)
    here = lab_dir if lab_dir.is_dir() else None
    states = loaded_states(lab_dir, client, lab_name) if here else {}
    return StatusReport(lab_name, here, servers, first_expiry(lab_dir) if here else None, states,
                        lab.settings.student_urls() if lab else [])


def all_labs() -> list:
    from lab.engine import runtime

    return runtime.all_labs(runtime.connect())


def logs(directory: Optional[Path], name: Optional[str], server: Optional[str], tail: int,
         follow: bool) -> Iterator[tuple[str, str]]:
    """(server, line) pairs of nginx's logs; both servers merged when none is named."""
    from lab.engine import runtime

    if server is not None and server not in layout.SERVERS:
        raise UsageError(f"unknown server {server!r}: use tls or mtls (or nothing for both)")
    lab_dir = lab_dir_for(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    return runtime.logs(client, lab_name, [server] if server else list(layout.SERVERS), tail=tail, follow=follow)


def doctor(lab: Lab, hours: float) -> list:
    from lab.app import doctor as checks

    return checks.run(lab.dir, lab.settings, hours=hours)[1]


# --------------------------------------------------------------------------- verify, curl


@dataclass(frozen=True)
class VerifyReport:
    results: list
    failure: Optional[LabError] = None


def _not_running(lab_name: str) -> str:
    """Which of the lab's containers are not running, when the engine can tell."""
    from lab.engine import runtime

    try:
        servers = runtime.status(runtime.connect(), lab_name, None)
    except LabError:
        return ""
    if all(st.state == "missing" for st in servers):
        return f"lab {lab_name} is not running: `lab up` starts it"
    down_ = [f"{st.container} is {st.state}" for st in servers if st.state != "running"]
    return ("; ".join(down_) + ": `lab up` repairs it") if down_ else ""


def _host(host: Optional[str]) -> Optional[str]:
    from lab.core.settings import validate_san

    return None if host is None else validate_san(host).split(":", 1)[1]


def verify(lab: Lab, only: Optional[list] = None, host: Optional[str] = None,
           as_student: Optional[str] = None) -> VerifyReport:
    from lab.teach import verify as checks

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
    from lab.teach import verify as checks

    sc = checks.pick(checks.scenarios(lab.dir, as_student), [scenario])[0]
    return checks.curl_command(sc, lab.dir, lab.settings, _host(host))


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


# --------------------------------------------------------------------------- students


@dataclass(frozen=True)
class AddReport:
    issued: list
    skipped: list          # already had a certificate (a roster run again)
    passwords: Path        # where the .p12 passwords are (the instructor's, not the students' folders)


def add_students(lab: Lab, names: list, from_file: Optional[Path], force: bool, legacy_p12: bool,
                 progress: Progress = _quiet) -> AddReport:
    """Issue a certificate per student. A roster run again completes it: who
    already has a certificate is kept. --force re-issues, and the running
    server is made to refuse the old certificates."""
    from lab.pki import students
    from lab.core.locking import lab_lock

    roster = students.read_roster(from_file) if from_file else []
    wanted = list(names or []) + roster
    if not wanted:
        raise UsageError("no student names: give NAME… or --from-file FILE")
    with lab_lock(lab.name, wait=LOCK_WAIT, waiting=progress):
        progress("issuing…")
        issued, skipped = students.add(lab.dir, lab.settings, wanted, force=force, legacy_p12=legacy_p12,
                                       host=student_host(lab.settings), skip_existing=bool(roster))
        if force:
            _enforce_revocation(lab, "the re-issued students' old certificates")
    return AddReport(issued, skipped, lab.dir / layout.PASSWORDS_DIR)


# How long `lab client …` waits for another lab command on the same lab (e.g.
# a second instructor terminal adding students) before giving up.
LOCK_WAIT = 120.0


def sign_request(lab: Lab, request: Path, name: Optional[str] = None):
    """A student's own certificate request, signed by the client CA (the key never leaves the student)."""
    from lab.pki import students
    from lab.core.locking import lab_lock

    with lab_lock(lab.name, wait=LOCK_WAIT):
        return students.sign(lab.dir, lab.settings, request, name, host=student_host(lab.settings))


def handouts(lab: Lab, names: list, all_students: bool, out: Optional[Path]) -> tuple:
    """One zip per student and the instructor's roster.csv of passwords."""
    from lab.pki import handout, students

    if bool(names) == all_students:
        raise UsageError("name the students (lab handout NAME…), or give --all")
    found = {s.name: s for s in students.list_students(lab.dir)}
    chosen = list(found.values()) if all_students else []
    for name in names or []:
        if name not in found:
            raise UsageError(f"no student named {name!r} in this lab: known are {', '.join(found) or 'none yet'}")
        chosen.append(found[name])
    # Checked before any zip is written: a certificate that does not work, or a .p12 no one can open.
    passwords = {s.name: handout.p12_password(lab.dir, s) for s in chosen if s.status == "valid"}
    bad = [(s.name, s.status if s.status != "valid" else
            f".p12 password lost: {layout.password_file(lab.dir, s.name).relative_to(lab.dir)}")
           for s in chosen if s.status != "valid" or passwords[s.name] is None]
    if bad and not all_students:
        raise UsageError(f"{', '.join(f'{name} ({why})' for name, why in bad)}: no handout for a certificate that "
                         "does not work",
                         hint=f"lab client add --force {' '.join(name for name, _ in bad)}{lab.selector} issues "
                              "new ones")
    skipped = {name for name, _ in bad}
    chosen = [s for s in chosen if s.name not in skipped]
    urls = lab.settings.student_urls() or [f"https://localhost:{lab.settings.mtls_port}/hello-world.txt"]
    made, sheet = handout.make(lab.dir, lab.settings, chosen, out or lab.dir / "handouts", urls, passwords)
    return made, sheet, bad


def room(lab: Lab, follow: bool = False):
    """Who has connected, from the mTLS server's access log: a Room, or (follow) an iterator of Rooms,
    a new one whenever a line arrives."""
    from lab.teach import room as rooms
    from lab.engine import runtime
    from lab.pki import students

    roster = [s.name for s in students.list_students(lab.dir)]
    if not roster:
        raise UsageError("no students in this lab yet: lab room reads who of them connected",
                         hint=f"lab client add NAME… (or --from-file class.txt){lab.selector}")
    client = runtime.connect()
    lines = (line for _, line in runtime.logs(client, lab.name, ["mtls"], tail="all", follow=follow))
    if not follow:
        return rooms.read(lines, roster, lab.name)

    def updates():
        current = rooms.start(roster)
        yield current
        for line in lines:
            rooms.add(current, line, lab.name)
            yield current
    return updates()


def list_students(lab: Lab) -> list:
    from lab.pki import students

    return students.list_students(lab.dir)


@dataclass(frozen=True)
class RevokeReport:
    student: Student
    enforced: bool           # False: the lab is not running (it loads the CRL when it starts)
    observed: str = ""       # what the server answered the revoked certificate
    curl: str = ""


def _enforce_revocation(lab: Lab, who: str) -> Optional[str]:
    """After the CRL changed: the running mTLS server must enforce it, or the
    command fails loudly. Returns _enforce_crl's answer."""
    from lab.engine import runtime
    from lab.core.errors import ConfigError, DockerUnavailable, RuntimeFailure

    try:
        client = runtime.connect()
        if runtime.server_state(client, lab.name, "mtls") is None:
            return None
        return "reloaded" if _sync(lab, client, ["mtls"]) else "current"
    except (DockerUnavailable, RuntimeFailure, ConfigError) as e:
        if not _mtls_port_answers(lab):
            return None   # nothing serves this lab here: a server that starts reads the new CRL
        raise type(e)(f"the CRL now revokes {who}, but the mTLS server could not be made to load it ({e}): "
                      f"if the lab is running, it still admits them", details=e.details,
                      hint=f"{e.hint + '; ' if e.hint else ''}`lab up{lab.selector}` reloads the server with the "
                           "new CRL") from None


def _mtls_port_answers(lab: Lab) -> bool:
    """Does anything accept connections on the lab's published mTLS port (a
    paused container's port does)? Evidence, when the engine cannot say."""
    import socket

    try:
        with socket.create_connection((lab.settings.connect_address(), lab.settings.mtls_port), timeout=1):
            return True
    except OSError:
        return False


def revoke(lab: Lab, name: str) -> RevokeReport:
    """Revoke a student's certificate and have the running mTLS server enforce
    it: the reload returns once no old nginx worker is left, then one request
    with that very certificate proves it is refused. If the server cannot be
    reached or reloaded, this fails (non-zero) saying the student still gets in."""
    from lab.pki import students
    from lab.teach import verify as checks
    from lab.core.locking import lab_lock

    with lab_lock(lab.name, wait=LOCK_WAIT):
        revoked = students.revoke(lab.dir, name)
        state = _enforce_revocation(lab, name)
    if state is None:
        return RevokeReport(revoked, False)
    if not (revoked.directory / f"{revoked.name}.key").is_file():
        # The key went with the folder: no request can show the refusal; the server has loaded the CRL
        # that lists the serial (_enforce_revocation raised otherwise).
        return RevokeReport(revoked, True)
    sc = checks.revoked_scenario(revoked)
    result = checks.run_one(sc, lab.dir, lab.settings)
    if not result.passed:
        raise LabError(f"the mTLS server still does not refuse {name}: {result.observed}",
                       hint=f"lab logs mtls{lab.selector} shows what the server saw; `lab up{lab.selector}` reloads it")
    return RevokeReport(revoked, True, result.observed, result.curl)


def pki(lab: Lab) -> list:
    from lab.pki import students

    return students.pki(lab.dir)


# --------------------------------------------------------------------------- images


def image_pull(lab: Lab, progress: Progress = _quiet) -> bool:
    from lab.engine import images, runtime

    return images.ensure(runtime.connect(), lab.settings.image, progress)


def image_save(lab: Lab, file: Path, progress: Progress = _quiet) -> int:
    from lab.engine import images, runtime

    return images.save(runtime.connect(), lab.settings.image, file, progress)


def image_load(file: Path, progress: Progress = _quiet) -> list:
    from lab.engine import images, runtime

    return images.load(runtime.connect(), file, progress)
