"""Students' certificates: issued, listed and revoked by the lab's client CA.

OpenSSL does the CA work (scripts/client-ca.sh: `openssl ca` with a database,
so serials are unique and revocation is possible); this module validates
names, stages each student's folder atomically, and reads certificates and the
revocation list back with the `cryptography` library.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from lab.core import interrupts, layout
from lab.core.errors import CertificateError, Interrupted, LabError, UsageError
from lab.core.resources import scripts_dir
from lab.core.settings import Settings

# A student's name becomes a file name, a folder and a certificate subject:
# letters, digits, dot, dash and underscore; no leading dot or dash.
_STUDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Student:
    """A student of the lab and the state of their certificate."""

    name: str
    serial: str
    not_after: dt.datetime | None   # None when the certificate cannot be read
    status: str                     # valid / revoked / expired / unreadable / folder missing
    directory: Path
    problem: str = ""               # why it is unreadable

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


# Names a student cannot have: their files would collide with the lab's own in
# the student's folder (server-ca.crt, client-ca.crt) or in certs/.
RESERVED = frozenset({"server-ca", "client-ca", "server", "client", "readme", "rogue-ca", "ca"})


def validate_student(name: str) -> str:
    if not _STUDENT_RE.fullmatch(name or ""):
        raise UsageError(f"invalid student name {name!r}: use 1 to 64 letters, digits, dots, dashes and "
                         "underscores, starting with a letter or digit")
    if name.lower() in RESERVED:
        raise UsageError(f"student name {name!r} is reserved: it is the name of one of the lab's own files "
                         f"({', '.join(sorted(RESERVED))}); choose another")
    return name


def read_roster(path: Path) -> list[str]:
    """One name a line; blank lines and lines starting with # are skipped.

    UTF-8, with or without the byte-order mark spreadsheets write; UTF-16 with
    its byte-order mark (Windows' "Unicode text"). Anything else is refused
    with the line where it stops being UTF-8, not guessed at."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror})") from None
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UsageError(f"{path} is not UTF-8 text (line {line}, byte {e.start})",
                         hint="save the class list as UTF-8 (e.g. \"CSV UTF-8\" in a spreadsheet), one name a line") \
            from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _script(*args: str) -> None:
    # Never cut in two (a Ctrl-C during the fork, or one that kills bash, left openssl to write the CA
    # database after the undo had looked): it finishes, or ends on the same Ctrl-C from the terminal,
    # and then the interrupt arises and the caller revokes whatever it issued.
    with interrupts.held():
        proc = subprocess.run(["bash", str(scripts_dir() / "client-ca.sh"), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CertificateError(f"scripts/client-ca.sh {args[0]} failed (exit {proc.returncode})",
                                   details=(proc.stderr or proc.stdout).strip(),
                                   hint="the lines above are OpenSSL's own")


def _require_ca(lab_dir: Path) -> Path:
    """The lab's certs/ folder with the client CA's database; writable, or a clear error before OpenSSL runs."""
    certs = layout.certs_dir(lab_dir)
    if not (certs / layout.CLIENT_CA_DB / "ca.cnf").is_file():
        raise CertificateError(f"no client CA in {certs}", hint="run `lab up` (or `lab render`) first")
    for folder in (certs, certs / layout.CLIENT_CA_DB, lab_dir):
        if not os.access(folder, os.W_OK):
            raise LabError(f"{folder} is not writable: the client CA records every certificate it issues or "
                           "revokes there", hint="fix its permissions (or work on a writable copy of the lab)")
    return certs


def _cert(path: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def _serial_hex(n: int) -> str:
    return f"{n:X}"


# --------------------------------------------------------------------------- the client CA's database


@dataclass(frozen=True)
class CaRecord:
    """One line of the client CA's database (openssl ca's index.txt)."""

    status: str          # V valid, R revoked, E expired
    serial_hex: str      # as openssl ca writes it, also the name of its copy: issued/SERIAL.pem
    common_name: str

    @property
    def serial(self) -> int:
        return int(self.serial_hex, 16)


def ca_index(lab_dir: Path) -> Path:
    return layout.certs_dir(lab_dir) / layout.CLIENT_CA_DB / "index.txt"


def _record(line: str) -> CaRecord | None:
    fields = line.split("\t")
    if len(fields) < 6 or fields[0] not in ("V", "R", "E") or not re.fullmatch(r"[0-9A-Fa-f]+", fields[3]):
        return None
    return CaRecord(fields[0], fields[3], fields[5].rsplit("/CN=", 1)[-1] if "/CN=" in fields[5] else "")


def ca_records(lab_dir: Path) -> list[CaRecord]:
    """Every certificate the client CA issued, as its database says: the authority
    on who is revoked (the CRL is made from it, and can always be made again)."""
    try:
        lines = ca_index(lab_dir).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [r for r in map(_record, lines) if r is not None]


def ca_index_damage(lab_dir: Path) -> list[int]:
    """The numbers of the database's lines that openssl ca could not read (it then refuses to issue or revoke)."""
    try:
        lines = ca_index(lab_dir).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [i for i, line in enumerate(lines, 1) if "\ufffd" in line or _record(line) is None]


def crl_serials(lab_dir: Path) -> set[int]:
    """The serials the CRL on disk lists (empty when it is missing or unreadable)."""
    from cryptography import x509

    try:
        return {r.serial_number for r in x509.load_pem_x509_crl(layout.crl_file(lab_dir).read_bytes())}
    except (OSError, ValueError):
        return set()


def revoked_serials(lab_dir: Path) -> set[int]:
    """Serials the client CA revoked: its database, and the CRL on disk if it is readable."""
    return {r.serial for r in ca_records(lab_dir) if r.status == "R"} | crl_serials(lab_dir)


def orphaned(lab_dir: Path) -> dict[str, list[CaRecord]]:
    """Valid certificates of students whose folder is gone (deleted by hand): they still let in
    whoever holds a copy (a handout), so they are listed, and revoked with the student."""
    clients = layout.clients_dir(lab_dir)
    found: dict[str, list[CaRecord]] = {}
    for r in ca_records(lab_dir):
        if r.status == "V" and _STUDENT_RE.fullmatch(r.common_name) and r.common_name.lower() not in RESERVED \
                and not (clients / r.common_name).is_dir():
            found.setdefault(r.common_name, []).append(r)
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
                   f"lab client revoke {name} stops it")
           for name, records in lost.items()]
    if not clients.is_dir():
        return out         # a new lab: no student, and nothing to read (lab up starts OpenSSL sooner)
    now = now or dt.datetime.now(dt.timezone.utc)
    revoked = revoked_serials(lab_dir)
    for folder in sorted(clients.iterdir()):
        crt = folder / f"{folder.name}.crt"
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            cert = _cert(crt)
        except (OSError, ValueError) as e:
            problem = e.strerror if isinstance(e, OSError) else "not a readable PEM certificate"
            out.append(Student(folder.name, "?", None, "unreadable", folder, f"{crt.name}: {problem}"))
            continue
        status = ("revoked" if cert.serial_number in revoked
                  else "expired" if cert.not_valid_after_utc <= now else "valid")
        out.append(Student(folder.name, _serial_hex(cert.serial_number), cert.not_valid_after_utc, status, folder))
    return sorted(out, key=lambda s: s.name)


def find(lab_dir: Path, name: str) -> Student:
    validate_student(name)
    students = list_students(lab_dir)
    for student in students:
        if student.name == name:
            return student
    known = ", ".join(s.name for s in students) or "none yet (lab client add NAME)"
    raise UsageError(f"no student named {name!r} in this lab: known are {known}")


def _revoke_records(lab_dir: Path, records: list[CaRecord]) -> None:
    """Revoke these certificates (from the CA's own copies: a student's file may be
    damaged or gone), then write the CRL once."""
    certs = _require_ca(lab_dir)
    issued = certs / layout.CLIENT_CA_DB / "issued"
    for record in records:
        _script("revoke", "--certs", str(certs), "--cert", str(issued / f"{record.serial_hex}.pem"))
    write_crl(lab_dir)


def revoke(lab_dir: Path, name: str) -> Student:
    """Revoke every certificate the client CA issued to this student and write a new
    CRL; the caller has the running server reload it."""
    student = find(lab_dir, name)
    valid = [r for r in ca_records(lab_dir) if r.status == "V" and r.common_name == name]
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
    _mark_revoked(student)
    return find(lab_dir, name)


def _mark_revoked(student: Student) -> None:
    """The student's README says so first: whoever reads the folder learns the certificate no longer works."""
    readme = student.directory / "README.txt"
    if not readme.is_file():
        return
    text = readme.read_text()
    if text.startswith("REVOKED"):
        return
    banner = (f"REVOKED on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d}: this certificate no longer works; the server "
              "refuses it (\"certificate revoked\").\nAsk the instructor for a new one.\n\n")
    readme.write_text(banner + text)


def _undo_unfinished(lab_dir: Path, names: list[str]) -> list[str]:
    """Certificates the CA issued to these names that never reached a student folder
    (an interrupted issue): revoked, so no valid certificate is left without an owner."""
    lost = orphaned(lab_dir)
    orphans = [r for name in names for r in lost.get(name, [])]
    if orphans:
        _revoke_records(lab_dir, orphans)
    return sorted({r.common_name for r in orphans})


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


def add(lab_dir: Path, settings: Settings, names: list[str], force: bool = False, legacy_p12: bool = False,
        host: str = "localhost", skip_existing: bool = False) -> tuple[list[IssuedStudent], list[str]]:
    """Issue a certificate per name; returns (issued, skipped: already had one).

    All names are checked before anything is written. skip_existing (a roster
    run again) keeps students who already have a certificate instead of
    refusing. Interrupted, what finished is kept, the certificate under way is
    revoked, and StudentsInterrupted says which were issued."""
    for name in names:
        validate_student(name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{', '.join(dupes)} given more than once")
    certs = _require_ca(lab_dir)
    clients = layout.clients_dir(lab_dir)
    present = [p.name for p in clients.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if clients.is_dir() else []
    clashes = _collisions(names, present)
    if clashes:
        raise UsageError(f"student names differ only in case: {'; '.join(clashes)} (one folder on macOS and "
                         "Windows): choose distinct names")
    if not force:
        _refuse_lost(lab_dir, names, "lab client revoke {names} stops it; or --force revokes it and issues a new one")
    existing = [n for n in names if n in present]
    skipped = existing if skip_existing and not force else []
    if existing and not force and not skip_existing:
        raise UsageError(f"{', '.join(existing)} already {'has' if len(existing) == 1 else 'have'} a certificate: "
                         "use --force to revoke it and issue a new one")
    todo = [n for n in names if n not in skipped]
    issued: list[IssuedStudent] = []
    try:
        for name in todo:
            issued.append(_issue(lab_dir, certs, settings, name, legacy_p12, host, force))
    except KeyboardInterrupt:
        done = [i.name for i in issued]
        undone = _undo_unfinished(lab_dir, todo)
        rest = [n for n in todo if n not in done]
        raise Interrupted(
            f"interrupted: {len(done)} of {len(todo)} students issued and kept"
            + (f" ({', '.join(done)})" if done else "") + f"; not issued: {', '.join(rest)}"
            + (f" (the certificate under way was revoked: {', '.join(undone)})" if undone else ""),
            hint="run the same command again: students already issued are kept, the rest are issued") from None
    return issued, skipped


def _readme(settings: Settings, name: str, serial: str, host: str, cert, own_key: bool) -> str:
    from lab.config.render import render_text

    return render_text("student-README.txt.j2", lab=settings.name, name=name, serial=serial, host=host,
                       mtls_port=settings.mtls_port, not_after=f"{cert.not_valid_after_utc:%Y-%m-%d}", own_key=own_key)


def _issue(lab_dir: Path, certs: Path, settings: Settings, name: str, legacy_p12: bool, host: str,
           force: bool) -> IssuedStudent:
    clients = layout.clients_dir(lab_dir)
    if force and any(r.status == "V" and r.common_name == name for r in ca_records(lab_dir)):
        revoke(lab_dir, name)  # --force: the old certificate (folder or not) must stop working
    clients.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=clients))
    try:
        try:
            _script("issue", "--certs", str(certs), "--out", str(tmp), "--name", name, "--lab", settings.name,
                    "--subject", layout.subject_base(settings.name), "--days", str(settings.days),
                    *(["--legacy-p12"] if legacy_p12 else []))
        except CertificateError:
            if not (clients / name).exists():
                _undo_unfinished(lab_dir, [name])
            raise
        cert = _cert(tmp / f"{name}.crt")
        serial = _serial_hex(cert.serial_number)
        readme = _readme(settings, name, serial, host, cert, own_key=False)
        (tmp / "README.txt").write_text(readme)
        password = (tmp / f"{name}.p12.password").read_text()
        secret = layout.password_file(lab_dir, name)
        secret.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(tmp / f"{name}.p12.password", secret)     # the instructor's, not the student's folder
        os.chmod(tmp, 0o700)
        shutil.rmtree(clients / name, ignore_errors=True)
        os.replace(tmp, clients / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IssuedStudent(name, clients / name, serial, password, cert.not_valid_after_utc)


def sign(lab_dir: Path, settings: Settings, request: Path, name: str | None = None,
         host: str = "localhost") -> IssuedStudent:
    """Sign a student's own certificate request with the client CA: the key never leaves the student.

    Checked first: the request's signature (it proves the student holds the key),
    an allowed name that no student has, and no CA or server purpose asked for.
    The certificate is made with the lab's subject and extensions, whatever the
    request asks."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        raw = request.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {request} ({e.strerror})") from None
    try:
        csr = x509.load_pem_x509_csr(raw) if b"-----BEGIN" in raw else x509.load_der_x509_csr(raw)
    except ValueError:
        raise UsageError(f"{request} is not a certificate request (PEM or DER)",
                         hint="make one: openssl req -new -key NAME.key -subj /CN=NAME -out NAME.csr") from None
    if not csr.is_signature_valid:
        raise UsageError(f"{request}: its signature does not verify: it was not made with the key it carries",
                         hint="make the request again with your own key (openssl req -new -key …)")
    for ext in csr.extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise UsageError(f"{request} asks to be a CA (basicConstraints CA:TRUE): a student's certificate never is")
        if isinstance(value, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.SERVER_AUTH in value:
            raise UsageError(f"{request} asks for serverAuth: the client CA issues client certificates only")
        if isinstance(value, x509.KeyUsage) and value.key_cert_sign:
            raise UsageError(f"{request} asks for keyCertSign: a student's certificate signs no certificate")
    if name is None:
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cns:
            raise UsageError(f"{request} has no common name: give the student's name with --name")
        name = str(cns[0].value)
    validate_student(name)
    certs = _require_ca(lab_dir)
    clients = layout.clients_dir(lab_dir)
    present = [p.name for p in clients.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if clients.is_dir() else []
    if name in present or _collisions([name], present):
        raise UsageError(f"the name {name!r} is taken by a student of this lab",
                         hint="--student another name (--name selects the lab)")
    _refuse_lost(lab_dir, [name], "lab client revoke {names} first, or --student another name")
    clients.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=clients))
    try:
        try:
            _script("sign", "--certs", str(certs), "--out", str(tmp), "--csr", str(request.absolute()),
                    "--name", name, "--subject", layout.subject_base(settings.name), "--days", str(settings.days))
        except CertificateError:
            _undo_unfinished(lab_dir, [name])
            raise
        cert = _cert(tmp / f"{name}.crt")
        serial = _serial_hex(cert.serial_number)
        (tmp / "README.txt").write_text(_readme(settings, name, serial, host, cert, own_key=True))
        os.chmod(tmp, 0o700)
        os.replace(tmp, clients / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IssuedStudent(name, clients / name, serial, "", cert.not_valid_after_utc)


def crl_next_update(lab_dir: Path) -> dt.datetime | None:
    """The CRL's nextUpdate; None when it is missing or cannot be read."""
    from lab.core import cache

    path = layout.crl_file(lab_dir)
    if not path.is_file():
        return None
    digest = cache.digest(files=[path])
    known = cache.recall(lab_dir, "crl", lambda e: dt.datetime.fromisoformat(e["next_update"])
                         if e["digest"] == digest else None)
    if known is not None:
        return known
    from cryptography import x509

    try:
        next_update = x509.load_pem_x509_crl(path.read_bytes()).next_update_utc
    except (OSError, ValueError):
        return None
    cache.put(lab_dir, "crl", {"digest": digest, "next_update": next_update.isoformat()})
    return next_update


def write_crl(lab_dir: Path) -> None:
    """The CRL, made anew from the client CA's database (every revocation is there)."""
    certs = _require_ca(lab_dir)
    layout.crl_file(lab_dir).parent.mkdir(mode=0o700, exist_ok=True)
    _script("crl", "--certs", str(certs), "--crl", str(layout.crl_file(lab_dir)), "--crl-days", str(layout.CRL_DAYS))


def ensure_fresh_crl(lab_dir: Path, now: dt.datetime | None = None) -> bool:
    """Make the CRL anew when it is missing, unreadable or has fewer than
    CRL_RENEW_DAYS days left; True when it was made."""
    now = now or dt.datetime.now(dt.timezone.utc)
    nxt = crl_next_update(lab_dir)
    if nxt is not None and nxt - now > dt.timedelta(days=layout.CRL_RENEW_DAYS) and _crl_has_every_revocation(lab_dir):
        return False
    write_crl(lab_dir)
    return True


def _crl_has_every_revocation(lab_dir: Path) -> bool:
    """Does the CRL list every revocation of the CA database? (Remembered per
    pair of file contents: a warm `lab up` does not parse the CRL again.)"""
    from lab.core import cache

    index = ca_index(lab_dir)
    key = cache.digest(files=[index, layout.crl_file(lab_dir)])
    if (cache.get(lab_dir, "crl_complete") or {}).get("digest") == key:
        return True
    complete = {r.serial for r in ca_records(lab_dir) if r.status == "R"} <= crl_serials(lab_dir)
    if complete:
        cache.put(lab_dir, "crl_complete", {"digest": key})
    return complete


# --------------------------------------------------------------------------- the whole PKI, for `lab certs`


@dataclass(frozen=True)
class CertInfo:
    file: str
    subject: str
    issuer: str
    serial: str
    sans: list
    key_usage: list
    extended_key_usage: list
    not_before: str
    not_after: str
    days_left: int
    sha256: str
    problem: str = ""     # set when the file cannot be read (then the rest is empty)
    name_constraints: list = field(default_factory=list)   # a CA's permitted names ("DNS:localhost", "IP:…")

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _eku_names() -> dict:
    from cryptography.x509.oid import ExtendedKeyUsageOID as E

    return {E.SERVER_AUTH: "serverAuth", E.CLIENT_AUTH: "clientAuth", E.CODE_SIGNING: "codeSigning",
            E.EMAIL_PROTECTION: "emailProtection", E.TIME_STAMPING: "timeStamping", E.OCSP_SIGNING: "OCSPSigning"}


def _usages(cert) -> tuple[list, list]:
    from cryptography import x509

    ku, eku = [], []
    try:
        k = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        for attr in ("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign"):
            if getattr(k, attr):
                ku.append(attr)
    except x509.ExtensionNotFound:
        pass
    try:
        eku = [_eku_names().get(oid, oid.dotted_string)
               for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        pass
    return ku, eku


def _name_constraints(cert) -> list[str]:
    from cryptography import x509

    try:
        value = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    return [f"{'DNS' if isinstance(n, x509.DNSName) else 'IP'}:{n.value}" for n in value.permitted_subtrees or []]


def pki(lab_dir: Path, now: dt.datetime | None = None) -> list[CertInfo]:
    """Every certificate of the lab: real set, demo set, students."""
    from cryptography.hazmat.primitives import hashes

    from lab.pki.certs import server_sans

    now = now or dt.datetime.now(dt.timezone.utc)
    paths = [layout.certs_dir(lab_dir) / n for n in layout.CERT_FILES if n.endswith(".crt")]
    paths += sorted(layout.demo_dir(lab_dir).glob("*.crt"))
    paths += sorted(layout.clients_dir(lab_dir).glob("*/*.crt"))
    out = []
    for path in paths:
        if not path.is_file() or path.name in (layout.SERVER_CA_CRT, layout.CLIENT_CA_CRT) and \
                path.parent.parent == layout.clients_dir(lab_dir):
            continue  # the CA copies in each student's folder
        try:
            cert = _cert(path)
        except (OSError, ValueError) as e:
            problem = e.strerror if isinstance(e, OSError) else "not a readable PEM certificate (damaged or truncated?)"
            out.append(CertInfo(str(path.relative_to(lab_dir)), "", "", "", [], [], [], "", "", 0, "", problem))
            continue
        ku, eku = _usages(cert)
        constraints = _name_constraints(cert)
        out.append(CertInfo(
            str(path.relative_to(lab_dir)), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
            _serial_hex(cert.serial_number), list(server_sans(cert)), ku, eku,
            cert.not_valid_before_utc.isoformat(), cert.not_valid_after_utc.isoformat(),
            (cert.not_valid_after_utc - now).days, cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            name_constraints=constraints,
        ))
    return out
