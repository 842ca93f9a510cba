"""Students' certificates: issued, listed and revoked by the lab's client CA.

OpenSSL does the CA work (scripts/client-ca.sh: `openssl ca` with a database,
so serials are unique and revocation is possible); this module validates
names, stages each student's folder atomically, and reads certificates and the
revocation list back with the `cryptography` library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from lab.core import layout, trace
from lab.core.errors import CertificateError, Interrupted, LabError, UsageError
from lab.core.files import refuse_links
from lab.core.settings import Settings
from lab.pki import names as naming
from lab.pki.ca import (
    CaRecord,
    ca_records,
    crl_serials,
    derived_maps,
    load_cert,
    require_ca,
    revoked_serials,
    run_script,
    serial_hex,
    write_crl,
    write_names,
)

# A student's login becomes a file name, a folder and the subject's UID:
# letters, digits, dot, dash and underscore; no leading dot or dash. Their display name
# (any script) is the certificate's CN: lab/pki/names.py.
_STUDENT_RE = naming.LOGIN_RE


#: A student's certificate: works, revoked, past its end, cannot be read, or its folder was deleted by hand.
StudentStatus = Literal["valid", "revoked", "expired", "unreadable", "folder missing"]


@dataclass(frozen=True)
class Student:
    """A student of the lab and the state of their certificate."""

    name: str
    serial: str
    not_after: dt.datetime | None   # None when the certificate cannot be read
    status: StudentStatus
    directory: Path
    problem: str = ""               # why it is unreadable
    display: str = ""               # the name as the class list writes it (the certificate's CN)

    @property
    def shown(self) -> str:
        """The student's name for people: the display name, or the login where there is none."""
        return self.display or self.name

    def file(self, kind: layout.StudentFile) -> Path:
        """clients/NAME/NAME.crt (.key, .p12)."""
        return self.directory / layout.student_file(self.name, kind)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["not_after"] = self.not_after.isoformat() if self.not_after else None
        d["directory"] = str(self.directory)
        return d


@dataclass(frozen=True)
class IssuedStudent:
    """A certificate just issued: where it is, and the .p12 bundle's password."""

    name: str
    directory: Path
    serial: str
    password: str
    not_after: dt.datetime
    display: str = ""

    @property
    def shown(self) -> str:
        return self.display or self.name


# Names a student cannot have: their files would collide with the lab's own in
# the student's folder (server-ca.crt, client-ca.crt) or in certs/.
RESERVED = frozenset({"server-ca", "client-ca", "server", "client", "readme", "rogue-ca", "ca"})


#: The throwaway student `lab demo` issues and revokes live in front of the room: never a real student's name
#: (the demo would revoke and re-issue them without a word).
DEMO_STUDENT = "demo-student"


def _refuse_demo_name(names: list[str]) -> None:
    if any(n.lower() == DEMO_STUDENT for n in names):
        raise UsageError(f"student name {DEMO_STUDENT!r} is reserved for lab demo, which revokes and re-issues it "
                         "live; choose another")


def validate_student(name: str) -> str:
    if not _STUDENT_RE.fullmatch(name or ""):
        raise UsageError(f"invalid student name {name!r}: use 1 to 64 letters, digits, dots, dashes and "
                         "underscores, starting with a letter or digit")
    if name.lower() in RESERVED:
        raise UsageError(f"student name {name!r} is reserved: it is the name of one of the lab's own files "
                         f"({', '.join(sorted(RESERVED))}); choose another")
    return name


def orphaned(lab_dir: Path) -> dict[str, list[CaRecord]]:
    """Valid certificates of students whose folder is gone (deleted by hand): they still let in
    whoever holds a copy (a handout), so they are listed, and revoked with the student."""
    clients = layout.clients_dir(lab_dir)
    found: dict[str, list[CaRecord]] = {}
    for r in ca_records(lab_dir):
        if r.status == "V" and _STUDENT_RE.fullmatch(r.login) and r.login.lower() not in RESERVED \
                and not (clients / r.login).is_dir():
            found.setdefault(r.login, []).append(r)
    return found


def _refuse_lost(lab_dir: Path, names: list[str], hint: str) -> None:
    """No new certificate over a valid one whose folder is gone (it would be forgotten, not revoked)."""
    lost = [n for n in names if n in orphaned(lab_dir)]
    if lost:
        raise UsageError(f"the client CA has a valid certificate of {', '.join(lost)}, whose folder is gone: whoever "
                         "holds a copy (a handout) still gets in", hint=hint.format(names=" ".join(lost)))


def list_students(lab_dir: Path, now: dt.datetime | None = None) -> list[Student]:
    """Every student folder, and every student the client CA has a valid certificate of whose
    folder is gone; one whose certificate cannot be read is listed as unreadable, not fatal."""
    clients = layout.clients_dir(lab_dir)
    lost = orphaned(lab_dir)
    out = [Student(name, records[-1].serial_hex, None, "folder missing", clients / name,
                   f"{name}'s folder is gone, yet the client CA's certificate of {name} (serial "
                   f"{', '.join(r.serial_hex for r in records)}) still lets in whoever holds a copy (a handout): "
                   f"lab client revoke {name} stops it", records[-1].display)
           for name, records in lost.items()]
    if not clients.is_dir():
        return out         # a new lab: no student, and nothing to read (lab up starts OpenSSL sooner)
    now = now or dt.datetime.now(dt.UTC)
    revoked = revoked_serials(lab_dir)
    for folder in sorted(clients.iterdir()):
        crt = folder / layout.student_file(folder.name, "crt")
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            cert = load_cert(crt)
        except (OSError, ValueError) as e:
            problem = (e.strerror or str(e)) if isinstance(e, OSError) else "not a readable PEM certificate"
            out.append(Student(folder.name, "?", None, "unreadable", folder, f"{crt.name}: {problem}"))
            continue
        status: StudentStatus = ("revoked" if cert.serial_number in revoked
                  else "expired" if cert.not_valid_after_utc <= now else "valid")
        out.append(Student(folder.name, serial_hex(cert.serial_number), cert.not_valid_after_utc, status, folder,
                           display=_common_name(cert)))
    return sorted(out, key=lambda s: s.name)


def _common_name(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def find(lab_dir: Path, name: str) -> Student:
    """A student by login, or by display name ("José Núñez") when exactly one student has it."""
    students = list_students(lab_dir)
    for student in students:
        if student.name == name:
            return student
    wanted = naming.tidy(name).casefold()
    same = [s for s in students if s.display and naming.tidy(s.display).casefold() == wanted]
    if len(same) == 1:
        return same[0]
    if same:
        raise UsageError(f"{len(same)} students are named {name!r}: give the login "
                         f"({', '.join(s.name for s in same)})")
    if not _STUDENT_RE.fullmatch(name or "") and naming.display_problem(naming.tidy(name)):
        validate_student(name)
    known = ", ".join(s.name for s in students) or "none yet (lab client add NAME)"
    raise UsageError(f"no student named {name!r} in this lab: known are {known}")


def _revoke_records(lab_dir: Path, records: list[CaRecord]) -> None:
    """Revoke these certificates (from the CA's own copies: a student's file may be
    damaged or gone), then write the CRL once."""
    certs = require_ca(lab_dir)
    issued = certs / layout.CLIENT_CA_DB / "issued"
    for record in records:
        run_script("revoke", "--certs", str(certs), "--cert", str(issued / f"{record.serial_hex}.pem"))
    write_crl(lab_dir)


def revoke(lab_dir: Path, name: str) -> Student:
    """Revoke every certificate the client CA issued to this student and write a new
    CRL; the caller has the running server reload it."""
    student = find(lab_dir, name)
    name = student.name
    valid = [r for r in ca_records(lab_dir) if r.status == "V" and r.login == name]
    if not valid:
        if student.status == "revoked":
            if int(student.serial, 16) not in crl_serials(lab_dir):
                write_crl(lab_dir)   # a revoke interrupted before its CRL was written: finish it
                return find(lab_dir, name)
            raise UsageError(f"{name}'s certificate (serial {student.serial}) is already revoked")
        raise CertificateError(f"the client CA has no valid certificate of {name} to revoke",
                               hint="lab client list shows the students and their state")
    _revoke_records(lab_dir, valid)
    if student.status == "folder missing":       # nothing on disk to mark, nor to list again
        return replace(student, status="revoked", problem="")
    _mark_revoked(lab_dir, student.directory)
    found = find(lab_dir, name)
    if found.status == "unreadable":     # its file is damaged: the CA database says what was revoked
        return replace(found, status="revoked", serial=", ".join(r.serial_hex for r in valid))
    return found


def _mark_revoked(lab_dir: Path, folder: Path) -> None:
    """The student's README says so first: whoever reads the folder learns the certificate no longer works.
    Never through a link (clients/NAME planted as one): the revocation stands, the README is left alone."""
    from lab.core.files import refuse_links, write_atomically

    readme = folder / "README.txt"
    try:
        refuse_links(lab_dir, readme)
    except LabError:
        return
    if not readme.is_file():
        return
    text = readme.read_text()
    if text.startswith("REVOKED"):
        return
    banner = (f"REVOKED on {dt.datetime.now(dt.UTC):%Y-%m-%d}: this certificate no longer works; the server "
              "refuses it (\"certificate revoked\").\nAsk the instructor for a new one.\n\n")
    write_atomically(readme, banner + text, root=lab_dir)


def _undo_unfinished(lab_dir: Path, names: list[str]) -> list[str]:
    """Certificates the CA issued to these names that never reached a student folder
    (an interrupted issue): revoked, so no valid certificate is left without an owner."""
    lost = orphaned(lab_dir)
    orphans = [r for name in names for r in lost.get(name, [])]
    if orphans:
        _revoke_records(lab_dir, orphans)
    return sorted({r.login for r in orphans})


def _collisions(names: list[str], existing: list[str]) -> list[str]:
    """Names equal but for case (to each other or to a student already here): one
    folder on macOS and Windows file systems."""
    seen: dict[str, str] = {n.lower(): n for n in existing}
    clashes = []
    for n in names:
        other = seen.get(n.lower())
        if other is not None and other != n:
            clashes.append(f"{n} and {other}")
        seen.setdefault(n.lower(), n)
    return clashes


def _asked(names: list[str] | list[naming.Asked]) -> list[naming.Asked]:
    return [n if isinstance(n, naming.Asked) else naming.Asked(naming.tidy(n)) for n in names]


def enroll(lab_dir: Path, names: list[str] | list[naming.Asked], problems: list[str] | None = None,
           demo: bool = False) -> list[naming.Enrollee]:
    """The students asked for, each with a login (lab/pki/names.py), or one UsageError listing every problem
    (of the class list, of each name) before anything is issued."""
    asked = _asked(names)
    problems = list(problems or [])
    typed = [a.display for a in asked if not a.origin]
    dupes = sorted({n for n in typed if typed.count(n) > 1})
    if dupes:
        problems.append(f"{', '.join(dupes)} given more than once")
    existing = {s.name: s.shown for s in list_students(lab_dir)}
    enrollees, found = naming.assign(asked, existing, (*RESERVED, DEMO_STUDENT))
    problems += found
    for e in enrollees:
        try:
            validate_student(e.login)
            if not demo:
                _refuse_demo_name([e.login])
        except UsageError as err:
            problems.append(f"{e.origin}: {err}" if e.origin else str(err))
    if len(problems) == 1 and asked and not asked[0].origin:
        raise UsageError(problems[0])
    if problems:
        def line(problem: str) -> int:
            found = re.search(r" line (\d+): ", problem)
            return int(found.group(1)) if found else 0

        where = "the class list" if any(a.origin for a in asked) else "the names given"
        raise UsageError(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {where}: nothing "
                         "was issued", details="\n".join(sorted(problems, key=line)),
                         hint="fix these lines and run the same command again")
    return enrollees


def add(lab_dir: Path, settings: Settings, names: list[str] | list[naming.Asked], force: bool = False,
        legacy_p12: bool = False, host: str = "localhost", skip_existing: bool = False, demo: bool = False,
        problems: list[str] | None = None, ttl: int | None = None) -> tuple[list[IssuedStudent], list[str]]:
    """Issue a certificate per name; returns (issued, skipped: already had one, by login).

    Every name (and every problem of the class list) is checked before anything
    is written. skip_existing (a roster run again) keeps students who already
    have a certificate instead of refusing. Interrupted, what finished is kept,
    the certificate under way is revoked, and the Interrupted error says which
    were issued."""
    enrollees = enroll(lab_dir, names, problems, demo)
    logins = [e.login for e in enrollees]
    for path in [*(layout.clients_dir(lab_dir) / login for login in logins), *derived_maps(lab_dir)]:
        refuse_links(lab_dir, path)   # before the CA issues anything
    certs = require_ca(lab_dir)
    clients = layout.clients_dir(lab_dir)
    present = [p.name for p in clients.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if clients.is_dir() else []
    clashes = _collisions(logins, present)
    if clashes:
        raise UsageError(f"student names differ only in case: {'; '.join(clashes)} (one folder on macOS and "
                         "Windows): choose distinct names")
    if not force:
        _refuse_lost(lab_dir, logins, "lab client revoke {names} stops it; or --force revokes it and issues a new one")
    existing = [n for n in logins if n in present]
    skipped = existing if skip_existing and not force else []
    if existing and not force and not skip_existing:
        raise UsageError(f"{', '.join(existing)} already {'has' if len(existing) == 1 else 'have'} a certificate: "
                         "use --force to revoke it and issue a new one")
    todo = [e for e in enrollees if e.login not in skipped]
    issued: list[IssuedStudent] = []
    undone: list[str] = []
    try:
        if force:
            _revoke_old(lab_dir, [e.login for e in todo])
        _issue_many(lab_dir, certs, settings, todo, legacy_p12, host, ttl, issued, undone)
    except KeyboardInterrupt:
        done = [i.name for i in issued]
        undone += _undo_unfinished(lab_dir, [e.login for e in todo])
        rest = [e.login for e in todo if e.login not in done]
        raise Interrupted(
            f"interrupted: {len(done)} of {len(todo)} students issued and kept"
            + (f" ({', '.join(done)})" if done else "") + f"; not issued: {', '.join(rest)}"
            + (f" (the certificates under way were revoked: {', '.join(sorted(set(undone)))})" if undone else ""),
            hint="run the same command again: students already issued are kept, the rest are issued") from None
    finally:
        write_names(lab_dir)
    return issued, skipped


def _readme(lab_dir: Path, settings: Settings, folder: Path, name: str, host: str, cert, has_key: bool) -> str:
    """The README of the student's folder: the same source as the handout's (lab/pki/handout.py)."""
    from lab.pki.handout import readme

    student = Student(name, serial_hex(cert.serial_number), cert.not_valid_after_utc, "valid", folder,
                      display=_common_name(cert))
    return readme(lab_dir, settings, student, [f"https://{host}:{settings.mtls_port}/hello-world.txt"], folder=True,
                  has_key=has_key)


@contextlib.contextmanager
def _staged_folder(lab_dir: Path, name: str, undo_always: bool) -> Iterator[Path]:
    """A student's new folder, made beside the others under a temporary name and moved into place
    (private) only once complete; removed whatever happens. When the CA fails, what it may have
    recorded for the name is undone (always, or when the student had no folder before)."""
    clients = layout.clients_dir(lab_dir)
    clients.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=clients))
    try:
        try:
            yield tmp
        except CertificateError:
            if undo_always or not (clients / name).exists():
                _undo_unfinished(lab_dir, [name])
            raise
        os.chmod(tmp, 0o700)
        shutil.rmtree(clients / name, ignore_errors=True)
        os.replace(tmp, clients / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _issued(lab_dir: Path, tmp: Path, settings: Settings, name: str, host: str) -> tuple[Any, str]:
    """The certificate the CA wrote into the staged folder, and its serial; the student's README beside it."""
    cert = load_cert(tmp / layout.student_file(name, "crt"))
    serial = serial_hex(cert.serial_number)
    (tmp / "README.txt").write_text(_readme(lab_dir, settings, tmp, name, host, cert, has_key=False),
                                    encoding="utf-8")
    return cert, serial


def _validity(settings: Settings, ttl: int | None) -> list[str]:
    """openssl ca's lifetime: the lab's days, or a short-lived certificate's exact end (now + ttl seconds)."""
    if ttl is None:
        return ["--days", str(settings.days)]
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    return ["--days", str(settings.days), "--enddate", f"{end:%Y%m%d%H%M%S}Z"]


def _revoke_old(lab_dir: Path, logins: list[str]) -> None:
    """--force: the valid certificates of these students (folder or not) stop working before new ones are
    issued; revoked together, with one CRL, and their READMEs say so (in case the new ones never land)."""
    records = [r for r in ca_records(lab_dir) if r.status == "V" and r.login in set(logins)]
    if records:
        _revoke_records(lab_dir, records)
    for login in sorted({r.login for r in records}):
        _mark_revoked(lab_dir, layout.clients_dir(lab_dir) / login)


def _issue_many(lab_dir: Path, certs: Path, settings: Settings, todo: list[naming.Enrollee], legacy_p12: bool,
                host: str, ttl: int | None, issued: list[IssuedStudent], undone: list[str]) -> None:
    """Issue these students' certificates in one openssl ca run (the CA database stays the authority on serials),
    keys, requests and bundles made in-process (lab/pki/bundle.py); each folder staged, moved into place whole,
    then appended to `issued`. What the CA signed that never reached its folder (a Ctrl-C, a failure) is revoked
    and named in `undone` before the error goes on."""
    from lab.core.concurrent import each
    from lab.pki import bundle

    if not todo:
        return
    clients = layout.clients_dir(lab_dir)
    clients.mkdir(parents=True, exist_ok=True)
    batch = Path(tempfile.mkdtemp(prefix=".requests-", dir=clients))
    wanted, order = {e.login for e in todo}, {e.login: i for i, e in enumerate(todo)}
    before = {r.serial for r in ca_records(lab_dir)}
    try:
        def request(numbered: tuple[int, naming.Enrollee]) -> tuple[str, Any]:
            i, e = numbered       # numbered: openssl ca signs them (and gives serials) in the class's order
            with trace.span("issue: key and request (per student)"):
                key = bundle.new_key()
                (batch / f"{i:05d}-{e.login}.csr").write_bytes(bundle.request(key, settings.name, e.login,
                                                                              e.display, e.role))
            return e.login, key

        with trace.span("issue: keys and requests, all"):
            keys = dict(each(request, list(enumerate(todo))))
        with trace.span("issue: openssl ca, every request in one run"):
            run_script("issue-many", "--certs", str(certs), "--out", str(batch), *_validity(settings, ttl))
        signed = {r.login: r for r in ca_records(lab_dir) if r.serial not in before and r.login in wanted}
        missing = [e.login for e in todo if e.login not in signed]
        if missing:
            raise CertificateError(f"the client CA's database has no new certificate of {', '.join(missing)}",
                                   hint="lab doctor checks the CA database")
        copies = certs / layout.CLIENT_CA_DB / "issued"
        cas = {f: (certs / f).read_bytes() for f in ("server-ca.crt", "client-ca.crt")}

        def place(e: naming.Enrollee) -> None:
            pem = (copies / f"{signed[e.login].serial_hex}.pem").read_bytes()
            issued.append(_place(lab_dir, settings, e, keys[e.login], pem, cas, legacy_p12, host))  # once landed

        with trace.span("issue: the students' folders, all"):
            each(place, todo)
        issued.sort(key=lambda i: order[i.name])   # the class's order, whichever folder landed first
    except BaseException:
        landed = {i.name for i in issued}
        lost = [r for r in ca_records(lab_dir) if r.status == "V" and r.serial not in before and r.login in wanted
                and r.login not in landed]
        if lost:
            _revoke_records(lab_dir, lost)
            undone += [r.login for r in lost]
        raise
    finally:
        shutil.rmtree(batch, ignore_errors=True)


def _place(lab_dir: Path, settings: Settings, student: naming.Enrollee, key: Any, pem: bytes,
           cas: dict[str, bytes], legacy_p12: bool, host: str) -> IssuedStudent:
    """A student's folder (key, certificate, bundle, the two CA certificates, README) staged and moved into place;
    the bundle's password in the instructor's passwords/, not the student's folder."""
    from cryptography import x509

    from lab.core.files import write_private
    from lab.pki import bundle

    name = student.login
    cert = x509.load_pem_x509_certificate(pem)
    if cert.public_key() != key.public_key():
        raise CertificateError(f"the client CA's certificate of {name} does not carry the key lab made for it")
    password = bundle.new_password()
    with trace.span("issue: key and bundle (per student)"):
        files = {layout.student_file(name, "key"): bundle.key_pem(key), layout.student_file(name, "crt"): pem,
                 **cas, layout.student_file(name, "p12"): bundle.p12(key, cert, f"{student.display} ({settings.name})",
                                                                      password, legacy_p12)}
    with trace.span("issue: README (per student)"):
        readme = _readme(lab_dir, settings, layout.clients_dir(lab_dir) / name, name, host, cert, has_key=True)
    with trace.span("issue: files written, folder moved into place (per student)"), \
            _staged_folder(lab_dir, name, undo_always=False) as tmp:
        for file, data in files.items():
            write_private(tmp / file, data)
        (tmp / "README.txt").write_text(readme, encoding="utf-8")
        made = tmp / (layout.student_file(name, "p12") + ".password")
        write_private(made, password.encode())
        secret = layout.password_file(lab_dir, name)
        secret.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(made, secret)     # the instructor's, not the student's folder
    return IssuedStudent(name, layout.clients_dir(lab_dir) / name, serial_hex(cert.serial_number), password,
                         cert.not_valid_after_utc, student.display)


# A certificate that ends within this is short-lived: renewing it leaves the old one to end by itself (nothing
# revoked, the "passive revocation" of short-lived certificates); a longer-lived one is revoked, as --force does.
SHORT_LIVED = dt.timedelta(days=1)


@dataclass(frozen=True)
class Renewal:
    issued: IssuedStudent
    ttl: int | None              # the lifetime kept from the old certificate (None: the lab's --days)
    old_serial: str
    old_revoked: bool            # False: the old certificate ends by itself at old_end
    old_end: dt.datetime | None


def renew(lab_dir: Path, settings: Settings, name: str, legacy_p12: bool = False, host: str = "localhost") -> Renewal:
    """lab client renew: a new key and certificate for the same student, role and lifetime. The old one, if it
    ends within SHORT_LIVED, is left to end; otherwise it is revoked (it would let its copies in for months)."""
    student = find(lab_dir, name)
    if student.status == "revoked":
        raise UsageError(f"{student.name}'s certificate is revoked: a revoked certificate is not renewed",
                         hint=f"lab client add --force {student.name} issues a new one")
    if student.status not in ("valid", "expired"):
        raise UsageError(f"{student.name}'s certificate cannot be renewed ({student.status}: {student.problem})",
                         hint=f"lab client add --force {student.name} issues a new one")
    old = load_cert(student.file("crt"))
    lifetime = old.not_valid_after_utc - old.not_valid_before_utc
    ttl = max(60, round(lifetime.total_seconds() / 60) * 60) if lifetime < dt.timedelta(days=settings.days) else None
    role = next((r.role for r in ca_records(lab_dir) if r.serial == old.serial_number), "student")
    short = student.status == "expired" or old.not_valid_after_utc - dt.datetime.now(dt.UTC) <= SHORT_LIVED
    enrollee = naming.Enrollee(login=student.name, display=student.display or student.name, role=role)
    certs = require_ca(lab_dir)
    done: list[IssuedStudent] = []
    try:
        if not short:
            _revoke_old(lab_dir, [student.name])
        _issue_many(lab_dir, certs, settings, [enrollee], legacy_p12, host, ttl, done, [])
    finally:
        write_names(lab_dir)
    return Renewal(done[0], ttl, student.serial, not short, old.not_valid_after_utc)


def sign(lab_dir: Path, settings: Settings, request: Path, name: str | None = None,
         host: str = "localhost") -> IssuedStudent:
    """Sign a student's own certificate request with the client CA: the key never leaves the student.

    Checked first: the request's signature (it proves the student holds the key),
    an allowed name that no student has, and no CA or server purpose asked for.
    The certificate is made with the lab's subject and extensions, whatever the
    request asks."""
    from lab.pki import requests

    csr = requests.read(request)
    requests.refuse_powers(csr, request)
    asked = name if name is not None else requests.asked_name(csr, request)
    student = enroll(lab_dir, [asked])[0]
    name = student.login
    for path in (layout.clients_dir(lab_dir) / name, *derived_maps(lab_dir)):
        refuse_links(lab_dir, path)
    certs = require_ca(lab_dir)
    clients = layout.clients_dir(lab_dir)
    present = [p.name for p in clients.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if clients.is_dir() else []
    if name in present or _collisions([name], present):
        raise UsageError(f"the name {asked!r} is taken by a student of this lab",
                         hint="--student another name (--name selects the lab)")
    _refuse_lost(lab_dir, [name], "lab client revoke {names} first, or --student another name")
    try:
        with _staged_folder(lab_dir, name, undo_always=True) as tmp:
            # The script reads PEM: a DER request is handed over as the same request in PEM.
            from cryptography.hazmat.primitives.serialization import Encoding

            pem = tmp.parent / f"{tmp.name}.csr"
            pem.write_bytes(csr.public_bytes(Encoding.PEM))
            try:
                run_script("sign", "--certs", str(certs), "--out", str(tmp), "--csr", str(pem), "--name", name,
                           "--display", student.display, "--lab", settings.name,
                           "--subject", layout.subject_base(settings.name),
                           "--days", str(settings.days))
            finally:
                pem.unlink(missing_ok=True)
            cert, serial = _issued(lab_dir, tmp, settings, name, host)
    finally:
        write_names(lab_dir)
    return IssuedStudent(name, clients / name, serial, "", cert.not_valid_after_utc, student.display)


# --------------------------------------------------------------------------- the whole PKI, for `lab certs`


