"""The client CA: its database (openssl ca's index.txt, the authority on who was
issued and who is revoked), its script (scripts/client-ca.sh, never cut in two
by a Ctrl-C), and the revocation list, always made from the database."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.core import interrupts, layout
from lab.core.errors import CertificateError, LabError
from lab.core.resources import scripts_dir


def run_script(*args: str) -> None:
    # Never cut in two (a Ctrl-C during the fork, or one that kills bash, left openssl to write the CA
    # database after the undo had looked): it finishes, or ends on the same Ctrl-C from the terminal,
    # and then the interrupt arises and the caller revokes whatever it issued.
    with interrupts.held():
        proc = subprocess.run(["bash", str(scripts_dir() / "client-ca.sh"), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CertificateError(f"scripts/client-ca.sh {args[0]} failed (exit {proc.returncode})",
                                   details=(proc.stderr or proc.stdout).strip(),
                                   hint="the lines above are OpenSSL's own")


def require_ca(lab_dir: Path) -> Path:
    """The lab's certs/ folder with the client CA's database; writable, or a clear error before OpenSSL runs."""
    certs = layout.certs_dir(lab_dir)
    if not (certs / layout.CLIENT_CA_DB / "ca.cnf").is_file():
        raise CertificateError(f"no client CA in {certs}", hint="run `lab up` (or `lab render`) first")
    for folder in (certs, certs / layout.CLIENT_CA_DB, lab_dir):
        if not os.access(folder, os.W_OK):
            raise LabError(f"{folder} is not writable: the client CA records every certificate it issues or "
                           "revokes there", hint="fix its permissions (or work on a writable copy of the lab)")
    return certs


def load_cert(path: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def serial_hex(n: int) -> str:
    return f"{n:X}"


@dataclass(frozen=True)
class CaRecord:
    """One line of the client CA's database (openssl ca's index.txt)."""

    status: str          # V valid, R revoked, E expired
    serial_hex: str      # as openssl ca writes it, also the name of its copy: issued/SERIAL.pem
    login: str           # the subject's UID (the student's login), or its CN for a certificate without one
    display: str = ""    # the subject's CN: the student's display name
    role: str = "student"  # a second OU (instructor), or student

    @property
    def serial(self) -> int:
        return int(self.serial_hex, 16)


def ca_index(lab_dir: Path) -> Path:
    return layout.certs_dir(lab_dir) / layout.CLIENT_CA_DB / "index.txt"


def _unescape(text: str) -> str:
    """A name as openssl ca writes it into index.txt: each byte past ASCII as \\xNN (UTF-8)."""
    if "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())
    return raw.decode("utf-8", errors="replace")


def _record(line: str) -> CaRecord | None:
    fields = line.split("\t")
    if len(fields) < 6 or fields[0] not in ("V", "R", "E") or not re.fullmatch(r"[0-9A-Fa-f]+", fields[3]):
        return None
    subject = fields[5]
    cn = _unescape(subject.rsplit("/CN=", 1)[-1]) if "/CN=" in subject else ""
    uid = re.search(r"/UID=([^/]+)", subject)
    role = "instructor" if "/OU=instructor/" in subject + "/" else "student"
    return CaRecord(fields[0], fields[3], uid.group(1) if uid else cn, cn, role)


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
    if next_update is None:
        # A CRL without nextUpdate was not made by lab (its CRLs always say when they end): treated as
        # unreadable, so that lab up makes it anew from the CA database.
        return None
    cache.put(lab_dir, "crl", {"digest": digest, "next_update": next_update.isoformat()})
    return next_update


def write_crl(lab_dir: Path) -> None:
    """The CRL, made anew from the client CA's database (every revocation is there)."""
    certs = require_ca(lab_dir)
    layout.crl_file(lab_dir).parent.mkdir(mode=0o700, exist_ok=True)
    partner = layout.demo_dir(lab_dir) / layout.PARTNER_CA_CRL
    run_script("crl", "--certs", str(certs), "--crl", str(layout.crl_file(lab_dir)), "--crl-days", str(layout.CRL_DAYS),
               *(["--also-crl", str(partner)] if partner.is_file() else []))
    write_names(lab_dir)


def _has_partner_crl(lab_dir: Path) -> bool:
    """Does the CRL file carry the partner CA's list too (a lab made before the partner CA lacks it)?"""
    partner = layout.demo_dir(lab_dir) / layout.PARTNER_CA_CRL
    try:
        return not partner.is_file() or partner.read_bytes().strip() in layout.crl_file(lab_dir).read_bytes()
    except OSError:
        return False


def uri_sans(cert) -> list[str]:
    """A certificate's URI SANs (a SPIFFE ID is one), in order; none when it has no SAN."""
    from cryptography import x509

    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


def der_serial(serial: int) -> str:
    """A serial as nginx's $ssl_client_serial writes it (OpenSSL's i2a_ASN1_INTEGER): its bytes in hex, an
    even number of digits."""
    return serial.to_bytes((serial.bit_length() + 7) // 8 or 1, "big").hex().upper()


def _names_text(lab_dir: Path) -> str:
    lines = ["# Made by lab from the client CA's database (certs/client-ca-db/index.txt), each time it changes:",
             "# a student's display name by certificate serial, for the mTLS server's pages. Not to be edited.", ""]
    for r in ca_records(lab_dir):
        name = r.display
        if r.status != "V" or not name or not name.isprintable() or any(c in name for c in '"\\$;{}'):
            continue
        lines.append(f'{der_serial(r.serial)} "{name}";')
    return "\n".join(lines) + "\n"


#: The lab's own client certificate (certs/client.crt), which no student holds, in the identities' map.
LAB_CLIENT = "lab-client"
#: The lab's own instructor (demo-certs/instructor.crt), for verify's instructor-only and spiffe-id scenarios.
LAB_INSTRUCTOR = "lab-instructor"


def _identities_text(lab_dir: Path, issuer_dn: str) -> str:
    """Each certificate the client CA issued, by issuer and serial as nginx writes them, to login:role."""
    lines = ["# Made by lab from the client CA's database: issuer|serial -> login:role. Not to be edited.", ""]
    quoted = issuer_dn.replace("\\", "\\\\").replace('"', '\\"')
    for r in ca_records(lab_dir):
        if r.status == "V" and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", r.login):
            lines.append(f'"{quoted}|{der_serial(r.serial)}" "{r.login}:{r.role}";')
    try:
        own = load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CRT)
        lines.append(f'"{quoted}|{der_serial(own.serial_number)}" "{LAB_CLIENT}:student";')
    except (OSError, ValueError):
        pass
    try:
        instructor = load_cert(layout.demo_dir(lab_dir) / layout.INSTRUCTOR_CLIENT[0])
        lines.append(f'"{quoted}|{der_serial(instructor.serial_number)}" "{LAB_INSTRUCTOR}:instructor";')
    except (OSError, ValueError):
        pass
    return "\n".join(lines) + "\n"


def _write_identities(lab_dir: Path) -> bool:
    from lab.core.files import write_if_changed
    from lab.pki.access import IDENTITIES_FILE

    try:
        issuer = load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT).subject.rfc4514_string()
    except (OSError, ValueError):
        return False
    return write_if_changed(lab_dir / layout.CRL_DIR / IDENTITIES_FILE, _identities_text(lab_dir, issuer), root=lab_dir)


def derived_maps(lab_dir: Path) -> list[Path]:
    """The files made from the CA database beside the CRL (names, identities, access rules): lab checks no
    link stands in their place before it issues anything, so an issue never ends half-recorded."""
    from lab.pki.access import IDENTITIES_FILE, RULES_FILE

    return [layout.names_file(lab_dir), lab_dir / layout.CRL_DIR / IDENTITIES_FILE, lab_dir / layout.CRL_DIR / RULES_FILE]


def _ocsp_index_text(lab_dir: Path) -> str:
    """The OCSP responder's index: the client CA's database as it is, then a "V" line for each certificate the
    client CA signed outside it (the lab's own client, the demo and gallery certificates: made by gen-certs.sh
    with openssl x509, never recorded), so the responder answers "good" for them rather than "unknown"."""
    from cryptography import x509

    try:
        db_text = ca_index(lab_dir).read_text(errors="replace")
        ca_name = load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT).subject
    except (OSError, ValueError):
        return ""
    known = {r.serial for r in ca_records(lab_dir)}
    lines = [line for line in db_text.splitlines() if line.strip()]
    found = [layout.certs_dir(lab_dir) / layout.CLIENT_CRT, *sorted(layout.demo_dir(lab_dir).glob("*.crt")),
             *sorted((lab_dir / layout.GALLERY_DIR).glob("*.crt"))]
    for path in found:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        if cert.issuer != ca_name or cert.serial_number in known:
            continue
        known.add(cert.serial_number)
        hexed = format(cert.serial_number, "X")
        lines.append("\t".join(["V", f"{cert.not_valid_after_utc:%y%m%d%H%M%S}Z", "",
                                 hexed.zfill(len(hexed) + len(hexed) % 2), "unknown", f"/CN=lab {path.name}"]))
    return "\n".join(lines) + "\n"


def write_ocsp_index(lab_dir: Path) -> bool:
    """ocsp/index.txt made anew from the client CA's database (a lab with an OCSP responder); True when
    written. The responder re-reads it when it changes (at its next request: lab asks it once itself)."""
    from lab.core.files import write_if_changed

    folder = lab_dir / layout.OCSP_DIR
    if not (folder / layout.OCSP_CRT).is_file():
        return False
    text = _ocsp_index_text(lab_dir)
    if not text:
        return False
    write_if_changed(folder / f"{layout.OCSP_INDEX}.attr", "unique_subject = no\n", root=lab_dir)
    return write_if_changed(folder / layout.OCSP_INDEX, text, root=lab_dir)


def _names_sources(lab_dir: Path) -> list[Path]:
    """Every file the derived maps are made from, the maps themselves, and the code that makes them."""
    from lab.pki import access

    certs, demo = layout.certs_dir(lab_dir), layout.demo_dir(lab_dir)
    ocsp = lab_dir / layout.OCSP_DIR
    return [Path(__file__), Path(access.__file__), ca_index(lab_dir), certs / layout.CLIENT_CA_CRT,
            certs / layout.CLIENT_CRT, lab_dir / access.ACCESS_FILE, *derived_maps(lab_dir),
            ocsp / layout.OCSP_CRT, ocsp / layout.OCSP_INDEX, ocsp / f"{layout.OCSP_INDEX}.attr",
            *sorted(demo.glob("*.crt")), *sorted((lab_dir / layout.GALLERY_DIR).glob("*.crt"))]


def write_names(lab_dir: Path) -> bool:
    """crl/students.map, made anew from the CA database when it differs (a server reloads what changed);
    True when written. When none of its sources nor the maps changed since the last time (a warm `lab up`),
    nothing is read: the digest of their contents says so."""
    from lab.core import cache
    from lab.core.files import write_if_changed
    from lab.pki import access

    if (cache.get(lab_dir, "names") or {}).get("digest") == cache.digest(files=_names_sources(lab_dir)):
        return False
    wrote = _write_identities(lab_dir) | access.write_rules(lab_dir)   # who is who; who may reach what
    write_ocsp_index(lab_dir)     # what the OCSP responder answers (it reads it itself: no reload)
    wrote = write_if_changed(layout.names_file(lab_dir), _names_text(lab_dir), root=lab_dir) or wrote
    cache.put(lab_dir, "names", {"digest": cache.digest(files=_names_sources(lab_dir))})
    return wrote


def ensure_fresh_crl(lab_dir: Path, now: dt.datetime | None = None) -> bool:
    """Make the CRL anew when it is missing, unreadable or has fewer than
    CRL_RENEW_DAYS days left; True when it was made."""
    now = now or dt.datetime.now(dt.UTC)
    nxt = crl_next_update(lab_dir)
    if (nxt is not None and nxt - now > dt.timedelta(days=layout.CRL_RENEW_DAYS) and _crl_has_every_revocation(lab_dir)
            and _has_partner_crl(lab_dir)):
        write_names(lab_dir)
        return False
    write_crl(lab_dir)
    return True


def unlisted_revocations(lab_dir: Path) -> set[int]:
    """Serials the CA database says are revoked that the CRL on disk does not list (a CRL put back by hand)."""
    return {r.serial for r in ca_records(lab_dir) if r.status == "R"} - crl_serials(lab_dir)


def _crl_has_every_revocation(lab_dir: Path) -> bool:
    """Does the CRL list every revocation of the CA database? (Remembered per
    pair of file contents: a warm `lab up` does not parse the CRL again.)"""
    from lab.core import cache

    index = ca_index(lab_dir)
    key = cache.digest(files=[index, layout.crl_file(lab_dir)])
    if (cache.get(lab_dir, "crl_complete") or {}).get("digest") == key:
        return True
    complete = not unlisted_revocations(lab_dir)
    if complete:
        cache.put(lab_dir, "crl_complete", {"digest": key})
    return complete
