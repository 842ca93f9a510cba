"""Handouts: one zip per student with what that student needs and nothing else
(certificate, key, .p12, the server CA, a README in text and HTML), and the
instructor's sheet of .p12 passwords, roster.csv, which no zip contains.

The password protects the key wherever the key travels: in a zip, the key is
encrypted with it (PKCS#8, AES-256), like the two bundles: NAME.p12 (modern:
PBES2/AES-256, Windows 10+, Firefox, Chrome, Java) and NAME-legacy.p12
(3DES/SHA-1: the macOS and iOS Keychain, older Windows, Go's pkcs12), so that
every laptop opens one without anyone being re-issued. The sheet lives in the
instructor's passwords/ folder, never beside the zips (the folder that is
copied to a USB stick or a course page)."""

from __future__ import annotations

import csv
import functools
import html
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core import layout
from lab.core.errors import UsageError
from lab.core.files import replacing, write_atomically


@dataclass(frozen=True)
class Handout:
    name: str
    zip: Path
    serial: str
    not_after: str
    has_key: bool


def _html(text: str, title: str) -> str:
    """The README as a page: the same text, links clickable."""
    import re

    body = html.escape(text)
    # A link ends before the sentence does: "…/whoami." links to /whoami, not to "/whoami." (a 404).
    body = re.sub(r"(https://[^\s&<]*[^\s&<.,;:)])", r'<a href="\1">\1</a>', body)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>body{{font:1em sans-serif;margin:2em}}pre{{font-size:1em;white-space:pre-wrap}}</style>"
            f"</head><body><pre>{body}</pre></body></html>\n")


#: The README of each system, beside README.txt in every zip.
SYSTEMS = ("windows", "macos", "linux")


def _stamp(path: Path) -> tuple[Path, int, int]:
    """A file and its modification time and size: a cache key that changes when the file is made again."""
    info = path.stat()
    return path, info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=8)
def _server_facts(ca: tuple[Path, int, int], server: tuple[Path, int, int]) -> tuple[str, str]:
    """The server certificate's names and the server CA's end, read once for a class's READMEs (four each)."""
    from cryptography import x509

    from lab.pki.certs import server_sans

    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    server_cert = x509.load_pem_x509_certificate(server[0].read_bytes())
    return ", ".join(n.split(":", 1)[1] for n in server_sans(server_cert)), f"{ca_cert.not_valid_after_utc:%Y-%m-%d}"


def readme(lab_dir: Path, settings: Any, student: Any, urls: list[str], part: str = "main", folder: bool = False,
           has_key: bool | None = None) -> str:
    """A student's README (templates/handout-README.txt.j2, the one source): README.txt (`part` "main"; in
    the zip, or in the student's folder with `folder`), or a system's (windows, macos, linux)."""
    from urllib.parse import urlsplit

    from lab.core.net import is_address
    from lab.core.templates import render_text

    names, ca_until = _server_facts(*(_stamp(layout.certs_dir(lab_dir) / f)
                                      for f in (layout.SERVER_CA_CRT, layout.SERVER_CRT)))
    base = urls[0].rsplit("/", 1)[0]
    where = urlsplit(urls[0])
    return render_text("handout-README.txt.j2", part=part, folder=folder, lab=settings.name, name=student.name,
                       display=student.shown, serial=student.serial, not_after=f"{student.not_after:%Y-%m-%d}",
                       has_key=student.file("key").exists() if has_key is None else has_key,
                       server_names=names, server_ca_until=ca_until, urls=urls,
                       whoami=f"{base}/whoami", help=f"{base}/help", netloc=where.netloc,
                       sni="" if is_address(where.hostname or "") else where.hostname)


#: The runnable clients in every zip (templates/clients/), each run against a real lab by the test suite.
CLIENTS = ("python_client.py", "client.js", "Client.java", "client.go")


def clients(student: Any, urls: list[str]) -> dict[str, str]:
    """The student's own clients, Python, Node, Java and Go: their files' names and the lab's URL in them."""
    from lab.core.templates import render_text

    whoami = urls[0].rsplit("/", 1)[0] + "/whoami"
    return {name: render_text(f"clients/{name}.j2", name=student.name, display=student.shown, whoami=whoami,
                              has_key=student.file("key").exists())
            for name in CLIENTS}


def p12_password(lab_dir: Path, student) -> str | None:
    """The password of the student's .p12 ("" when they have none: a signed request); None when it is
    lost (missing, empty or not text): their .p12 then opens for no one."""
    if not student.file("p12").is_file():
        return ""
    try:
        return layout.password_file(lab_dir, student.name).read_text(encoding="utf-8") or None
    except (OSError, UnicodeDecodeError):
        return None


def sheet_path(lab_dir: Path) -> Path:
    """The instructor's password sheet: in passwords/ (0700), never beside the zips."""
    return lab_dir / layout.PASSWORDS_DIR / ROSTER


def _protected(student: Any, password: str, lab: str) -> dict[str, bytes]:
    """The student's key encrypted with their password, and the legacy bundle, made from the key in their folder."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from lab.pki import bundle

    key = serialization.load_pem_private_key(student.file("key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(student.file("crt").read_bytes())
    # The bundles hold the student's certificate and key, and nothing else: importing one adds exactly what the
    # README's clean-up removes (no CA rides along into a browser's store), and Go's pkcs12.Decode, which wants
    # exactly two bags, reads the legacy one.
    friendly = f"{student.shown} ({lab})"
    return {
        layout.student_file(student.name, "key"): key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode())),
        layout.student_file(student.name, "p12"): bundle.p12(key, cert, friendly, password),
        f"{student.name}-legacy.p12": bundle.p12(key, cert, friendly, password, legacy=True),
    }


def make(lab_dir: Path, settings: Any, students: list[Any], out: Path, urls: list[str],
         passwords: dict[str, str]) -> tuple[list[Handout], Path]:
    """A zip per student, then the password sheet; each written under a temporary name and renamed when complete."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder for the handouts")
    out.mkdir(parents=True, exist_ok=True)
    kept = {row[0]: row for row in _sheet_rows(sheet_path(lab_dir))}    # checked before any zip is written
    made: list[Handout] = []
    rows = []
    for st in students:
        folder = st.directory
        target = out / f"{st.name}.zip"
        text = readme(lab_dir, settings, st, urls)
        protected = _protected(st, passwords[st.name], settings.name) if st.file("key").is_file() else {}
        with replacing(target, 0o600) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name in (*(layout.student_file(st.name, k) for k in ("crt", "key", "p12")), layout.SERVER_CA_CRT):
                if name in protected:
                    z.writestr(f"{st.name}/{name}", protected.pop(name))
                elif (folder / name).is_file():
                    z.write(folder / name, f"{st.name}/{name}")
            for name, data in protected.items():
                z.writestr(f"{st.name}/{name}", data)
            for client, source in clients(st, urls).items():
                z.writestr(f"{st.name}/{client}", source)
            for system in SYSTEMS if st.file("key").is_file() else ():
                z.writestr(f"{st.name}/README-{system}.txt", readme(lab_dir, settings, st, urls, system))
            z.writestr(f"{st.name}/README.txt", text)
            z.writestr(f"{st.name}/README.html", _html(text, f"{st.name}: mTLS lab {settings.name}"))
        rows.append([st.name, st.shown, target.name, passwords[st.name], st.serial, f"{st.not_after:%Y-%m-%d}"])
        made.append(Handout(st.name, target, st.serial, f"{st.not_after:%Y-%m-%d}",
                            st.file("key").exists()))
    sheet = sheet_path(lab_dir)
    sheet.parent.mkdir(mode=0o700, exist_ok=True)
    kept.update({row[0]: row for row in rows})       # a student handed out again: their new row
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROSTER_HEADER)
    writer.writerows(kept[name] for name in sorted(kept))
    write_atomically(sheet, _SHEET_BOM + buf.getvalue(), 0o600)
    return made, sheet


SLIPS = "slips.html"


def write_slips(lab_dir: Path, settings: Any, rows: list[list[str]], url: str) -> Path:
    """passwords/slips.html: a slip per student (display name, login, the URL, the password) to print and
    cut out; beside the sheet, private like it (never in the folder of zips)."""
    from lab.core.templates import render_text

    slips = [{"login": r[0], "display": r[1], "zip": r[2], "password": r[3]} for r in rows]
    path = lab_dir / layout.PASSWORDS_DIR / SLIPS
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomically(path, render_text("handout-slips.html.j2", lab=settings.name, slips=slips, url=url), 0o600)
    return path


def sheet_rows(lab_dir: Path, logins: list[str]) -> list[list[str]]:
    """These students' rows of the password sheet, in this order."""
    rows = {row[0]: row for row in _sheet_rows(sheet_path(lab_dir))}
    return [rows[login] for login in logins if login in rows]


ROSTER = "roster.csv"
ROSTER_HEADER = ["login", "name", "zip", "p12 password", "serial", "expiry"]
# The sheet before display names (a lab made before): its rows are read, and written again with the name.
_OLD_HEADER = ["name", "zip", "p12 password", "serial", "expiry"]
# Excel reads a CSV file as UTF-8 only when it starts with the byte-order mark: "José", not "JosÃ©".
_SHEET_BOM = "\ufeff"


def drop_row(lab_dir: Path, name: str) -> bool:
    """Take a student's row out of the password sheet (a student removed); True when there was one."""
    sheet = sheet_path(lab_dir)
    rows = _sheet_rows(sheet)
    kept = [row for row in rows if row[0] != name]
    if len(kept) == len(rows):
        return False
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROSTER_HEADER)
    writer.writerows(kept)
    write_atomically(sheet, _SHEET_BOM + buf.getvalue(), 0o600)
    return True


def _sheet_rows(sheet: Path) -> list[list[str]]:
    """The rows of the password sheet already there: every student handed out before keeps their row (one
    student handed out again must not cost the others theirs). A file of that name lab did not write is
    refused, never replaced."""
    if not sheet.exists():
        return []
    try:
        rows = list(csv.reader(sheet.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    if rows and rows[0] == _OLD_HEADER and all(len(r) == len(_OLD_HEADER) for r in rows[1:]):
        rows = [ROSTER_HEADER] + [[r[0], r[0], *r[1:]] for r in rows[1:]]
    if not rows or rows[0] != ROSTER_HEADER or any(len(r) != len(ROSTER_HEADER) for r in rows[1:]):
        raise UsageError(f"{sheet} is not a password sheet lab wrote: not replacing it",
                         hint="move it away, or give another folder with --out")
    return rows[1:]
