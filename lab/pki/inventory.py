"""The lab's whole PKI as `lab certs` shows it: every certificate's subject,
issuer, serial, names, usages, validity and fingerprint, read with cryptography."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core import layout
from lab.pki.ca import load_cert, serial_hex


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


GALLERY_DIR = layout.GALLERY_DIR     # lab/teach/gallery.py writes it


def pki(lab_dir: Path, now: dt.datetime | None = None) -> list[CertInfo]:
    """Every certificate of the lab: real set, demo set, students."""
    from cryptography.hazmat.primitives import hashes

    from lab.pki.certs import server_sans

    now = now or dt.datetime.now(dt.UTC)
    paths = [layout.certs_dir(lab_dir) / n for n in layout.CERT_FILES if n.endswith(".crt")]
    paths += sorted(layout.demo_dir(lab_dir).glob("*.crt"))
    paths += sorted(layout.clients_dir(lab_dir).glob("*/*.crt"))
    paths += sorted((lab_dir / GALLERY_DIR).glob("*.crt"))         # lab gallery's specimens
    out = []
    for path in paths:
        if not path.is_file() or path.name in (layout.SERVER_CA_CRT, layout.CLIENT_CA_CRT) and \
                path.parent.parent == layout.clients_dir(lab_dir):
            continue  # the CA copies in each student's folder
        try:
            cert = load_cert(path)
        except (OSError, ValueError) as e:
            problem = (e.strerror or str(e)) if isinstance(e, OSError) else "not a readable PEM certificate (damaged or truncated?)"
            out.append(CertInfo(str(path.relative_to(lab_dir)), "", "", "", [], [], [], "", "", 0, "", problem))
            continue
        ku, eku = _usages(cert)
        constraints = _name_constraints(cert)
        out.append(CertInfo(
            str(path.relative_to(lab_dir)), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
            serial_hex(cert.serial_number), list(server_sans(cert)), ku, eku,
            cert.not_valid_before_utc.isoformat(), cert.not_valid_after_utc.isoformat(),
            (cert.not_valid_after_utc - now).days, cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            name_constraints=constraints,
        ))
    return out
