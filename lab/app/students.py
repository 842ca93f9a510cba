"""Students: issue (one by one or a class list), sign their own requests,
hand out, list, revoke with the running server made to enforce it, who of
them connected (the room), and the lab's whole PKI."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from lab.app.selection import Lab, Progress, quiet, student_host
from lab.app.servers import sync
from lab.core import layout
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lab.pki.handout import Handout
    from lab.pki.inventory import CertInfo
    from lab.pki.students import IssuedStudent, Renewal, Student
    from lab.teach.room import Room, Roster


@dataclass(frozen=True)
class AddReport:
    issued: list[IssuedStudent]
    skipped: list[str]     # already had a certificate (a roster run again)
    passwords: Path        # where the .p12 passwords are (the instructor's, not the students' folders)


def add_students(lab: Lab, names: Optional[list[str]], from_file: Optional[Path], force: bool, legacy_p12: bool,
                 progress: Progress = quiet, demo: bool = False, role: str = "student",
                 ttl: Optional[int] = None) -> AddReport:
    """Issue a certificate per student. A roster run again completes it: who
    already has a certificate is kept. --force re-issues, and the running
    server is made to refuse the old certificates."""
    from lab.core.locking import lab_lock
    from lab.pki import names as naming
    from lab.pki import students

    roster, problems = naming.read_class_list(from_file) if from_file else ([], [])
    wanted = [naming.Asked(naming.tidy(n), role=role) for n in names or []] + \
        [a if a.role else replace(a, role=role) for a in roster]
    if not wanted and not problems:
        raise UsageError("no student names: give NAME… or --from-file FILE")
    with lab_lock(lab.name, wait=LOCK_WAIT, waiting=progress):
        progress("issuing…")
        try:
            issued, skipped = students.add(lab.dir, lab.settings, wanted, force=force, legacy_p12=legacy_p12,
                                           host=student_host(lab.settings), skip_existing=bool(roster), demo=demo,
                                           problems=problems, ttl=ttl)
        finally:
            _load_names(lab)
        if force:
            _enforce_revocation(lab, "the re-issued students' old certificates")
    return AddReport(issued, skipped, lab.dir / layout.PASSWORDS_DIR)


# How long `lab client …` waits for another lab command on the same lab (e.g.
# a second instructor terminal adding students) before giving up.
LOCK_WAIT = 120.0


def renew(lab: Lab, name: str) -> Renewal:
    """lab client renew: the same student, role and lifetime, a new key and certificate; a long-lived old one
    is revoked and the running server made to refuse it, a short-lived one ends by itself."""
    from lab.core.locking import lab_lock
    from lab.pki import students

    with lab_lock(lab.name, wait=LOCK_WAIT):
        try:
            renewal = students.renew(lab.dir, lab.settings, name, host=student_host(lab.settings))
        finally:
            _load_names(lab)
        if renewal.old_revoked:
            _enforce_revocation(lab, f"{renewal.issued.name}'s old certificate")
    return renewal


def sign_request(lab: Lab, request: Path, name: Optional[str] = None) -> IssuedStudent:
    """A student's own certificate request, signed by the client CA (the key never leaves the student)."""
    from lab.core.locking import lab_lock
    from lab.pki import students

    with lab_lock(lab.name, wait=LOCK_WAIT):
        try:
            return students.sign(lab.dir, lab.settings, request, name, host=student_host(lab.settings))
        finally:
            _load_names(lab)


def handouts(lab: Lab, names: Optional[list[str]], all_students: bool,
             out: Optional[Path], slips: bool = False) -> tuple[list[Handout], Path, list[tuple[str, str]], Optional[Path]]:
    """One zip per student and the instructor's roster.csv of passwords (and, with slips, a page of slips
    to print for the students handed out)."""
    from lab.pki import handout, students

    if bool(names) == all_students:
        raise UsageError("name the students (lab handout NAME…), or give --all")
    found = {s.name: s for s in students.list_students(lab.dir)}
    chosen = list(found.values()) if all_students else []
    for name in names or []:
        chosen.append(found.get(name) or students.find(lab.dir, name))   # a login, or a display name
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
    made, sheet = handout.make(lab.dir, lab.settings, chosen, out or lab.dir / layout.HANDOUTS_DIR, urls,
                               {name: p for name, p in passwords.items() if p is not None})
    page = handout.write_slips(lab.dir, lab.settings, handout.sheet_rows(lab.dir, [h.name for h in made]), urls[0]) \
        if slips else None
    return made, sheet, bad, page


def since_time(text: Optional[str]) -> Optional[dt.datetime]:
    """--since: HH:MM (today, this machine's time) or an ISO 8601 time; None when not given."""
    if text is None:
        return None
    local = dt.datetime.now().astimezone()
    try:
        if len(text) <= 5 and ":" in text:
            hours, minutes = (int(x) for x in text.split(":"))
            return local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: give HH:MM (today) or a time such as 2026-12-02T09:30") from None
    return when if when.tzinfo else when.replace(tzinfo=local.tzinfo)


def _room_log(lab: Lab, follow: bool, since: Optional[str] = None) -> tuple[Roster, Iterator[str]]:
    """The roster (who, and the certificates the CA issued them), and the mTLS server's access log lines.
    The demo's throwaway student is no student of the class."""
    from lab.engine import runtime
    from lab.pki import ca, students
    from lab.teach.room import Roster

    start = since_time(since)
    found = [s for s in students.list_students(lab.dir) if s.name != students.DEMO_STUDENT]
    names = [s.name for s in found]
    if not names:
        raise UsageError("no students in this lab yet: lab room reads who of them connected",
                         hint=f"lab client add NAME… (or --from-file class.txt){lab.selector}")
    serials = {r.serial: r.login for r in ca.ca_records(lab.dir) if r.login in names}
    issuer = ca.load_cert(layout.certs_dir(lab.dir) / layout.CLIENT_CA_CRT).subject.rfc4514_string()
    engine = runtime.connect()
    return Roster(names, issuer, serials, start, {s.name: s.shown for s in found}), (line for _, line in runtime.logs(engine, lab.name, ["mtls"], tail="all",
                                                                                   follow=follow))


def room(lab: Lab, since: Optional[str] = None) -> Room:
    """Who has connected, from the mTLS server's access log."""
    from lab.teach import room as rooms

    roster, lines = _room_log(lab, follow=False, since=since)
    return rooms.read(lines, roster)


def room_updates(lab: Lab, since: Optional[str] = None) -> Iterator[Room]:
    """The room, anew whenever a line arrives in the access log (until the log ends)."""
    from lab.teach import room as rooms

    roster, lines = _room_log(lab, follow=True, since=since)

    def updates() -> Iterator[Room]:
        current = rooms.start(roster)
        yield current
        for line in lines:
            rooms.add(current, line, roster)
            yield current
    return updates()


def list_students(lab: Lab) -> list[Student]:
    from lab.pki import students

    return students.list_students(lab.dir)


@dataclass(frozen=True)
class RevokeReport:
    student: Student
    enforced: bool           # False: the lab is not running (it loads the CRL when it starts)
    observed: str = ""       # what the server answered the revoked certificate
    curl: str = ""
    unreadable: str = ""     # why no request could show the refusal (the student's files cannot be read)
    by_ocsp: bool = False    # enforced by the OCSP responder's answer, with no reload of nginx (--revocation ocsp)


def _enforce_revocation(lab: Lab, who: str) -> Optional[str]:
    """After the CRL changed: the running mTLS server must enforce it, or the
    command fails loudly. Returns "reloaded" or "current", or None when no server of the lab runs here."""
    from lab.core.errors import ConfigError, DockerUnavailable, RuntimeFailure
    from lab.engine import runtime

    try:
        engine = runtime.connect()
        found = runtime.server_state(engine, lab.name, "mtls")
        if found is None or found[1] in ("created", "exited", "dead"):
            return None   # not running: when it starts, it reads the CRL as it is now
        return "reloaded" if sync(lab, engine, ["mtls"]) else "current"
    except (DockerUnavailable, RuntimeFailure, ConfigError) as e:
        if not mtls_port_answers(lab):
            return None   # nothing serves this lab here: a server that starts reads the new CRL
        raise type(e)(f"the CRL now revokes {who}, but the mTLS server could not be made to load it ({e}): "
                      f"if the lab is running, it still admits them", details=e.details,
                      hint=f"{e.hint + '; ' if e.hint else ''}`lab up{lab.selector}` reloads the server with the "
                           "new CRL") from None


def _load_names(lab: Lab) -> None:
    """The running mTLS server greets new students by their display name: it reloads crl/students.map (a
    reload without downtime). Best effort: a server that cannot be reached reads the list when it starts,
    and until then greets a new student by the common name as nginx writes it."""
    from lab.engine import runtime

    try:
        engine = runtime.connect()
        found = runtime.server_state(engine, lab.name, "mtls")
        if found is not None and found[1] == "running":
            sync(lab, engine, ["mtls"])
        if lab.settings.ocsp:     # a new student: the responder must know the certificate before its first handshake
            runtime.ask_responder(engine, lab.name)
    except LabError:
        pass


def mtls_port_answers(lab: Lab) -> bool:
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
    from lab.core.locking import lab_lock
    from lab.pki import students
    from lab.teach import verify as checks

    by_ocsp = lab.settings.revocation == "ocsp"
    with lab_lock(lab.name, wait=LOCK_WAIT):
        revoked = students.revoke(lab.dir, name)
        # OCSP alone: no reload, the responder's next answer is "revoked"; with a CRL too, the reload as ever.
        state = None if by_ocsp else _enforce_revocation(lab, name)
        if lab.settings.ocsp:
            state = _tell_responder(lab, name) or state
    if state is None:
        return RevokeReport(revoked, False)
    if not revoked.file("key").is_file():
        # The key went with the folder: no request can show the refusal; the server has loaded the CRL
        # that lists the serial (_enforce_revocation raised otherwise).
        return RevokeReport(revoked, True)
    sc = checks.revoked_scenario(revoked)
    try:
        result = checks.run_one(sc, lab.dir, lab.settings)
    except (OSError, ValueError):
        # The student's certificate or key cannot be read (truncated, damaged): the revocation stands and the
        # server has loaded it; only the proof by a request is missing.
        return RevokeReport(revoked, True, "", "", unreadable=f"{revoked.file('crt').name} or "
                            f"{revoked.file('key').name} is damaged or truncated")
    # A certificate past its end is refused as expired before any CRL is read: refused all the same.
    ended = revoked.not_after is not None and revoked.not_after <= dt.datetime.now(dt.UTC)
    if not result.passed and not (ended and "certificate has expired" in result.observed):
        raise LabError(f"the mTLS server still does not refuse {name}: {result.observed}",
                       hint=f"lab logs mtls{lab.selector} shows what the server saw; `lab up{lab.selector}` reloads it")
    if by_ocsp:
        _load_names(lab)     # refused with no reload (shown above); now the pages' lists catch up, without downtime
    return RevokeReport(revoked, True, result.observed, result.curl, by_ocsp=by_ocsp)


def _tell_responder(lab: Lab, who: str) -> Optional[str]:
    """The OCSP responder reads its index again now (lab asks it once: OpenSSL's responder looks for a change
    only before it waits for a request). "asked", or None when it does not run here; LabError when it runs
    and does not answer (with ssl_ocsp on, the mTLS server then refuses everyone)."""
    from lab.engine import runtime

    try:
        engine = runtime.connect()
        found = engine.container(layout.container_name(lab.name, "ocsp"))
    except LabError:
        return None
    if found is None or found.status != "running":
        return None
    why = runtime.ask_responder(engine, lab.name)
    if why:
        raise LabError(f"the client CA's database now revokes {who}, but the OCSP responder does not answer ({why}): "
                       "until it does, the mTLS server refuses everyone", hint=f"lab status{lab.selector}; "
                       f"lab up{lab.selector} starts it again")
    return "asked"


def find(lab: Lab, name: str) -> Student:
    from lab.pki import students

    return students.find(lab.dir, name)


@dataclass(frozen=True)
class RemoveReport:
    name: str
    revoked: Optional[RevokeReport]      # None: the certificate was revoked already
    deleted: list[str]                   # what was deleted, relative to the lab directory


def remove(lab: Lab, name: str) -> RemoveReport:
    """Revoke (when the certificate still works) and forget a student: their folder, .p12 password, handout
    zip and password-sheet row. The CA database keeps the revoked record: serials are never reused."""
    from lab.core.files import refuse_links
    from lab.core.locking import lab_lock
    from lab.pki import access, handout
    from lab.pki import students as pki_students

    student = pki_students.find(lab.dir, name)
    name = student.name                   # a display name given: the student's login
    revoked = revoke(lab, name) if student.status in ("valid", "expired", "unreadable", "folder missing") else None
    with lab_lock(lab.name, wait=LOCK_WAIT):
        deleted = []
        for path in (student.directory, layout.password_file(lab.dir, name),
                     lab.dir / layout.HANDOUTS_DIR / f"{name}.zip"):
            refuse_links(lab.dir, path)
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            deleted.append(str(path.relative_to(lab.dir)))
        if handout.drop_row(lab.dir, name):
            deleted.append(f"{layout.PASSWORDS_DIR}/{handout.ROSTER} ({name}'s row)")
        if access.forget(lab.dir, name):
            deleted.append(f"{access.ACCESS_FILE} ({name}'s rules)")
    return RemoveReport(name, revoked, deleted)


def pki(lab: Lab) -> list[CertInfo]:
    from lab.pki import inventory

    return inventory.pki(lab.dir)
