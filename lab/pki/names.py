"""Students' names as a class list has them, and the logins the lab makes of them.

A student has a display name, written as the class list writes it, in any
script ("José Núñez", "陈美玲", "Liam O'Connor"): it is the common name of their
certificate (a UTF8String), the name on the server's pages, in `lab room`
and in their README. And a login, ASCII, made from the display name by
python-slugify ("jose-nunez", "chen-mei-ling", "liam-oconnor"): their folder,
file names, zip and the name commands take. A name that is already a valid
login is its own login, so labs made before keep their names. The login is in
the certificate too (the subject's UID), so the client CA's database knows
each student by it.

A class list is one name a line, or a CSV with a header naming a `name`
column (and optionally `login` and `email`), comma, semicolon or tab
separated, as spreadsheets save it. Every problem of a list is reported at
once, with its line, before anything is issued.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.core.errors import UsageError

#: A login: letters, digits, dot, dash and underscore, no leading dot or dash (a file name on every OS).
LOGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: RFC 5280's upper bound for a common name (ub-common-name), in characters.
MAX_DISPLAY = 64
# Besides letters, marks and digits of any script: what names are written with. Nothing an nginx
# configuration, an HTML page or openssl's -subj would read as syntax ($ \ / + = < > & ").
_NAME_PUNCTUATION = " '’.-,()_"
#: A student's role: the mTLS server's access rules (lab/pki/access.py) know these.
ROLES = ("student", "instructor")
#: Logins for the lab's own files, and the demo's student: a name that makes one gets a suffix.
LOGIN_SUFFIX_MAX = 999


@dataclass(frozen=True)
class Enrollee:
    """One student asked for: the display name, the login chosen for them, and where they were asked."""

    display: str
    login: str
    origin: str = ""          # "class.csv line 4", or "" (the command line)
    email: str = ""
    role: str = "student"


def tidy(name: str) -> str:
    """The name as stored: NFC (one form for "é" however it was typed), inner spaces collapsed, ends trimmed."""
    return unicodedata.normalize("NFC", " ".join(name.split()))


def display_problem(name: str) -> str | None:
    """Why this (tidied) name cannot be a student's display name; None when it can."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_DISPLAY:
        return f"the name has {len(name)} characters; a certificate's common name holds {MAX_DISPLAY}"
    for ch in name:
        if unicodedata.category(ch)[0] not in "LMN" and ch not in _NAME_PUNCTUATION:
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            return (f"{shown} is not allowed in a name (letters and digits of any script, spaces and "
                    f"{' '.join(_NAME_PUNCTUATION.strip())} are)")
    if unicodedata.category(name[0])[0] not in "LN":
        return "a name starts with a letter or a digit"
    return None


def login_for(display: str) -> str:
    """The login made from a display name: itself when it is one already, else its slug (ASCII)."""
    from slugify import slugify

    if LOGIN_RE.fullmatch(display):
        return display
    slug = slugify(display, replacements=[["'", ""], ["’", ""]], max_length=48, word_boundary=True)
    return slug or "student"


def login_problem(login: str) -> str | None:
    if not LOGIN_RE.fullmatch(login):
        return (f"login {login!r} is not 1 to 64 letters, digits, dots, dashes and underscores starting with a "
                "letter or digit")
    return None


@dataclass(frozen=True)
class Asked:
    """A line of a class list (or a name on the command line), before logins are chosen."""

    display: str
    login: str = ""           # given by the list; "" = made from the display name
    origin: str = ""
    email: str = ""
    role: str = ""            # "" = the command's (student unless --role)


def _delimiter(header: str) -> str | None:
    """The separator of a CSV class list's header line, or None when the list is one name a line."""
    for sep in (",", ";", "\t"):
        cells = [c.strip().strip('"').strip().lower() for c in header.split(sep)]
        if len(cells) > 1 and "name" in cells:
            return sep
    return None


def parse_class_list(text: str, source: str) -> tuple[list[Asked], list[str]]:
    """The students a class list asks for, and every problem in it (each "SOURCE line N: …")."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        return [], []
    sep = _delimiter(lines[first])
    if sep is None:
        asked = [Asked(tidy(line), origin=f"{source} line {n}") for n, line in enumerate(lines, 1)
                 if line.strip() and not line.lstrip().startswith("#")]
        return asked, []
    rows = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=sep)
    header = [c.strip().lower() for c in next(rows)]
    unknown = [c for c in header if c and c not in ("name", "login", "email", "role")]
    problems = [f"{source} line {first + 1}: unknown column {', '.join(map(repr, unknown))} (the columns are name, "
                "and optionally login, email and role)"] if unknown else []
    asked = []
    for row in rows:
        n = first + rows.line_num
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            problems.append(f"{source} line {n}: {len(row)} cells for {len(header)} columns (a name with a comma "
                            "is written in quotes)")
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        asked.append(Asked(tidy(cells.get("name", "")), cells.get("login", ""), f"{source} line {n}",
                           cells.get("email", ""), cells.get("role", "").lower()))
    return asked, problems


def read_class_list(path: Path) -> tuple[list[Asked], list[str]]:
    """A class list file: UTF-8, with or without the byte-order mark spreadsheets write, or UTF-16 with its
    byte-order mark (Windows' "Unicode text"). Anything else is refused with the line where it stops
    being UTF-8, not guessed at."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror})") from None
    try:
        text = raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UsageError(f"{path} is not UTF-8 text (line {line}, byte {e.start})",
                         hint="save the class list as UTF-8 (e.g. \"CSV UTF-8\" in a spreadsheet), one name a line") \
            from None
    return parse_class_list(text, path.name)


def _numbered(base: str, taken: set[str], reserved: Iterable[str]) -> str:
    blocked = taken | {r.lower() for r in reserved}
    if base.lower() not in blocked:
        return base
    for n in range(2, LOGIN_SUFFIX_MAX + 1):
        candidate = f"{base[:60]}-{n}"
        if candidate.lower() not in blocked:
            return candidate
    raise UsageError(f"no free login for {base!r}")


def assign(asked: list[Asked], existing: dict[str, str], reserved: Iterable[str]) -> tuple[list[Enrollee], list[str]]:
    """Logins for the students asked for, and every problem (a bad name, a login given twice).

    `existing` is {login: display name} of the lab's students. Stable across runs: a display name the lab
    already has keeps its login (the same class list run again finds the same students); two students of
    the same display name get the login and the login suffixed -2 (then -3…). A login given by the list is
    kept as given; so is a name that is a login already ("alice", "Alice_Martin")."""
    reserved = list(reserved)
    problems: list[str] = []
    by_display: dict[str, list[str]] = {}
    for login, display in sorted(existing.items(), key=lambda item: (len(item[0]), item[0])):
        by_display.setdefault(tidy(display), []).append(login)
    taken = {login.lower() for login in existing}
    given = [a.login.lower() for a in asked if a.login]
    chosen: list[Enrollee] = []
    for a in asked:
        where = f"{a.origin}: " if a.origin else ""
        if a.role and a.role not in ROLES:
            problems.append(f"{where}role {a.role!r}: a role is {' or '.join(ROLES)}")
            continue
        problem = display_problem(a.display)
        if problem:
            problems.append(f"{where}{a.display!r}: {problem}" if a.display else f"{where}{problem}")
            continue
        if a.login:
            problem = login_problem(a.login)
            if problem is None and given.count(a.login.lower()) > 1:
                problem = f"login {a.login!r} is given to more than one student"
            if problem:
                problems.append(f"{where}{problem}")
                continue
            chosen.append(Enrollee(a.display, a.login, a.origin, a.email, a.role or "student"))
            taken.add(a.login.lower())
            continue
        if a.display in existing:                   # a login typed: that student
            chosen.append(Enrollee(existing[a.display], a.display, a.origin, a.email, a.role or "student"))
            continue
        known = by_display.get(a.display)
        if known:                                   # this student is here already: the same login
            chosen.append(Enrollee(a.display, known.pop(0), a.origin, a.email, a.role or "student"))
            continue
        base = login_for(a.display)
        twice = any(e.display == a.display for e in chosen)
        if base == a.display and not (twice and a.origin):
            # A name that is a login is its own login, as it always was: a clash (in case, or with a
            # reserved name) is refused by name, not suffixed behind the instructor's back.
            chosen.append(Enrollee(a.display, base, a.origin, a.email, a.role or "student"))
            taken.add(base.lower())
            continue
        login = _numbered(base, taken | set(given), reserved)
        taken.add(login.lower())
        chosen.append(Enrollee(a.display, login, a.origin, a.email, a.role or "student"))
    return chosen, problems
