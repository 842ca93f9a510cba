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
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import layout
from lab.errors import CertificateError, UsageError
from lab.resources import scripts_dir
from lab.settings import Settings

# A student's name becomes a file name, a folder and a certificate subject:
# letters, digits, dot, dash and underscore; no leading dot or dash.
_STUDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Student:
    """A student of the lab and the state of their certificate."""

    name: str
    serial: str
    not_after: dt.datetime
    status: str            # valid / revoked / expired
    directory: Path

    def to_dict(self) -> dict:
        d = asdict(self)
        d["not_after"] = self.not_after.isoformat()
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


def validate_student(name: str) -> str:
    if not _STUDENT_RE.fullmatch(name or ""):
        raise UsageError(f"invalid student name {name!r}: use 1 to 64 letters, digits, dots, dashes and "
                         "underscores, starting with a letter or digit")
    return name


def read_roster(path: Path) -> list[str]:
    """One name a line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror})") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _script(*args: str) -> None:
    proc = subprocess.run(["bash", str(scripts_dir() / "client-ca.sh"), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CertificateError(f"scripts/client-ca.sh {args[0]} failed (exit {proc.returncode})",
                               details=(proc.stderr or proc.stdout).strip(), hint="the lines above are OpenSSL's own")


def _require_ca(lab_dir: Path) -> Path:
    certs = layout.certs_dir(lab_dir)
    if not (certs / layout.CLIENT_CA_DB / "ca.cnf").is_file():
        raise CertificateError(f"no client CA in {certs}", hint="run `lab up` (or `lab render`) first")
    return certs


def _cert(path: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def _serial_hex(n: int) -> str:
    return f"{n:X}"


def add(lab_dir: Path, settings: Settings, names: list[str], force: bool = False, legacy_p12: bool = False,
        host: str = "localhost") -> list[IssuedStudent]:
    """Issue a certificate per name. All names are checked before anything is written."""
    from lab.render import render_text

    for name in names:
        validate_student(name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{', '.join(dupes)} given more than once")
    certs = _require_ca(lab_dir)
    clients = layout.clients_dir(lab_dir)
    existing = [n for n in names if (clients / n).exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already {'has' if len(existing) == 1 else 'have'} a certificate: "
                         "use --force to revoke it and issue a new one")
    issued = []
    for name in names:
        if (clients / name).exists() and find(lab_dir, name).status != "revoked":
            revoke(lab_dir, name)  # --force: the old certificate must stop working
        clients.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=clients))
        try:
            _script("issue", "--certs", str(certs), "--out", str(tmp), "--name", name, "--lab", settings.name,
                    "--subject", layout.subject_base(settings.name), "--days", str(settings.days),
                    *(["--legacy-p12"] if legacy_p12 else []))
            cert = _cert(tmp / f"{name}.crt")
            serial = _serial_hex(cert.serial_number)
            readme = render_text("student-README.txt.j2", lab=settings.name, name=name, serial=serial, host=host,
                                 mtls_port=settings.mtls_port, not_after=f"{cert.not_valid_after_utc:%Y-%m-%d}")
            (tmp / "README.txt").write_text(readme)
            os.chmod(tmp, 0o700)
            shutil.rmtree(clients / name, ignore_errors=True)
            os.replace(tmp, clients / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        password = (clients / name / f"{name}.p12.password").read_text().strip()
        issued.append(IssuedStudent(name, clients / name, serial, password, cert.not_valid_after_utc))
    return issued


def revoked_serials(lab_dir: Path) -> set[int]:
    from cryptography import x509

    path = layout.crl_file(lab_dir)
    if not path.is_file():
        return set()
    crl = x509.load_pem_x509_crl(path.read_bytes())
    return {r.serial_number for r in crl}


def list_students(lab_dir: Path, now: dt.datetime | None = None) -> list[Student]:
    now = now or dt.datetime.now(dt.timezone.utc)
    revoked = revoked_serials(lab_dir)
    out = []
    clients = layout.clients_dir(lab_dir)
    for folder in sorted(clients.iterdir() if clients.is_dir() else []):
        crt = folder / f"{folder.name}.crt"
        if folder.name.startswith(".") or not crt.is_file():
            continue
        cert = _cert(crt)
        status = ("revoked" if cert.serial_number in revoked
                  else "expired" if cert.not_valid_after_utc <= now else "valid")
        out.append(Student(folder.name, _serial_hex(cert.serial_number), cert.not_valid_after_utc, status, folder))
    return out


def find(lab_dir: Path, name: str) -> Student:
    validate_student(name)
    students = list_students(lab_dir)
    for student in students:
        if student.name == name:
            return student
    known = ", ".join(s.name for s in students) or "none yet (lab client add NAME)"
    raise UsageError(f"no student named {name!r} in this lab: known are {known}")


def revoke(lab_dir: Path, name: str) -> Student:
    """Revoke a student's certificate and write a new CRL; the caller reloads nginx."""
    student = find(lab_dir, name)
    if student.status == "revoked":
        raise UsageError(f"{name}'s certificate (serial {student.serial}) is already revoked")
    certs = _require_ca(lab_dir)
    _script("revoke", "--certs", str(certs), "--cert", str(student.directory / f"{name}.crt"),
            "--crl", str(layout.crl_file(lab_dir)), "--crl-days", str(layout.CRL_DAYS))
    return find(lab_dir, name)


def crl_next_update(lab_dir: Path) -> dt.datetime | None:
    from lab import cache

    path = layout.crl_file(lab_dir)
    if not path.is_file():
        return None
    digest = cache.digest(files=[path])
    entry = cache.get(lab_dir, "crl")
    if entry and entry.get("digest") == digest:
        return dt.datetime.fromisoformat(entry["next_update"])
    from cryptography import x509

    next_update = x509.load_pem_x509_crl(path.read_bytes()).next_update_utc
    cache.put(lab_dir, "crl", {"digest": digest, "next_update": next_update.isoformat()})
    return next_update


def ensure_fresh_crl(lab_dir: Path, now: dt.datetime | None = None) -> bool:
    """Renew the CRL when it has fewer than CRL_RENEW_DAYS days left; True when renewed."""
    now = now or dt.datetime.now(dt.timezone.utc)
    nxt = crl_next_update(lab_dir)
    if nxt is not None and nxt - now > dt.timedelta(days=layout.CRL_RENEW_DAYS):
        return False
    certs = _require_ca(lab_dir)
    layout.crl_file(lab_dir).parent.mkdir(mode=0o700, exist_ok=True)
    _script("crl", "--certs", str(certs), "--crl", str(layout.crl_file(lab_dir)), "--crl-days", str(layout.CRL_DAYS))
    return True


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


def pki(lab_dir: Path, now: dt.datetime | None = None) -> list[CertInfo]:
    """Every certificate of the lab: real set, demo set, students."""
    from cryptography.hazmat.primitives import hashes

    from lab.certs import server_sans

    now = now or dt.datetime.now(dt.timezone.utc)
    paths = [layout.certs_dir(lab_dir) / n for n in layout.CERT_FILES if n.endswith(".crt")]
    paths += sorted(layout.demo_dir(lab_dir).glob("*.crt"))
    paths += sorted(layout.clients_dir(lab_dir).glob("*/*.crt"))
    out = []
    for path in paths:
        if not path.is_file() or path.name in (layout.SERVER_CA_CRT, layout.CLIENT_CA_CRT) and \
                path.parent.parent == layout.clients_dir(lab_dir):
            continue  # the CA copies in each student's folder
        cert = _cert(path)
        ku, eku = _usages(cert)
        out.append(CertInfo(
            str(path.relative_to(lab_dir)), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
            _serial_hex(cert.serial_number), list(server_sans(cert)), ku, eku,
            cert.not_valid_before_utc.isoformat(), cert.not_valid_after_utc.isoformat(),
            (cert.not_valid_after_utc - now).days, cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        ))
    return out
