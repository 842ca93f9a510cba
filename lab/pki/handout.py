"""Handouts: one zip per student with what that student needs and nothing else
(certificate, key, .p12, the server CA, a README in text and HTML), and the
instructor's sheet of .p12 passwords, roster.csv, which no zip contains."""

from __future__ import annotations

import csv
import html
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    body = re.sub(r"(https://[^\s&<]+)", r'<a href="\1">\1</a>', body)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>body{{font:1em sans-serif;margin:2em}}pre{{font-size:1em;white-space:pre-wrap}}</style>"
            f"</head><body><pre>{body}</pre></body></html>\n")


def readme(lab_dir: Path, settings, student, urls: list[str]) -> str:
    from cryptography import x509

    from lab.core.templates import render_text
    from lab.pki.certs import server_sans

    ca = x509.load_pem_x509_certificate((layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT).read_bytes())
    server = x509.load_pem_x509_certificate((layout.certs_dir(lab_dir) / layout.SERVER_CRT).read_bytes())
    names = ", ".join(n.split(":", 1)[1] for n in server_sans(server))
    whoami = urls[0].rsplit("/", 1)[0] + "/whoami"
    return render_text("handout-README.txt.j2", lab=settings.name, name=student.name, serial=student.serial,
                       not_after=f"{student.not_after:%Y-%m-%d}", has_key=student.file("key").exists(),
                       server_names=names, server_ca_until=f"{ca.not_valid_after_utc:%Y-%m-%d}", urls=urls, whoami=whoami)


def p12_password(lab_dir: Path, student) -> str | None:
    """The password of the student's .p12 ("" when they have none: a signed request); None when it is
    lost (missing, empty or not text): their .p12 then opens for no one."""
    if not student.file("p12").is_file():
        return ""
    try:
        return layout.password_file(lab_dir, student.name).read_text(encoding="utf-8") or None
    except (OSError, UnicodeDecodeError):
        return None


def make(lab_dir: Path, settings, students: list, out: Path, urls: list[str],
         passwords: dict[str, str]) -> tuple[list[Handout], Path]:
    """A zip per student, then roster.csv; each written under a temporary name and renamed when complete."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder for the handouts")
    out.mkdir(parents=True, exist_ok=True)
    kept = {row[0]: row for row in _sheet_rows(out / ROSTER)}    # checked before any zip is written
    made: list[Handout] = []
    rows = []
    for st in students:
        folder = st.directory
        target = out / f"{st.name}.zip"
        text = readme(lab_dir, settings, st, urls)
        with replacing(target, 0o600) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name in (*(layout.student_file(st.name, k) for k in ("crt", "key", "p12")), layout.SERVER_CA_CRT):
                if (folder / name).is_file():
                    z.write(folder / name, f"{st.name}/{name}")
            z.writestr(f"{st.name}/README.txt", text)
            z.writestr(f"{st.name}/README.html", _html(text, f"{st.name}: mTLS lab {settings.name}"))
        rows.append([st.name, target.name, passwords[st.name], st.serial, f"{st.not_after:%Y-%m-%d}"])
        made.append(Handout(st.name, target, st.serial, f"{st.not_after:%Y-%m-%d}",
                            st.file("key").exists()))
    sheet = out / ROSTER
    kept.update({row[0]: row for row in rows})       # a student handed out again: their new row
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROSTER_HEADER)
    writer.writerows(kept[name] for name in sorted(kept))
    write_atomically(sheet, buf.getvalue(), 0o600)
    return made, sheet


ROSTER = "roster.csv"
ROSTER_HEADER = ["name", "zip", "p12 password", "serial", "expiry"]


def drop_row(out: Path, name: str) -> bool:
    """Take a student's row out of the password sheet in `out` (a student removed); True when there was one."""
    sheet = out / ROSTER
    rows = _sheet_rows(sheet)
    kept = [row for row in rows if row[0] != name]
    if len(kept) == len(rows):
        return False
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROSTER_HEADER)
    writer.writerows(kept)
    write_atomically(sheet, buf.getvalue(), 0o600)
    return True


def _sheet_rows(sheet: Path) -> list[list[str]]:
    """The rows of the password sheet already there: every student handed out before keeps their row (one
    student handed out again must not cost the others theirs). A file of that name lab did not write is
    refused, never replaced."""
    if not sheet.exists():
        return []
    try:
        rows = list(csv.reader(sheet.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    if not rows or rows[0] != ROSTER_HEADER or any(len(r) != len(ROSTER_HEADER) for r in rows[1:]):
        raise UsageError(f"{sheet} is not a password sheet lab wrote: not replacing it",
                         hint="move it away, or give another folder with --out")
    return rows[1:]
