"""Who may reach what on the mTLS server: authorization, after authentication.

The mTLS server authenticates a client (a certificate from the client CA, in
date, not revoked, made for clients: else HTTP 400). Then it authorizes: may
this client reach this path? A refusal there is HTTP 403, naming the identity
the server saw and the rule that refused it. The identity is the login and
role the client CA's database gives the certificate of that issuer and serial,
never the subject's text (any CA can write any CN).

The lesson's rules: /hello-world.txt for every valid certificate, /instructor/
for the instructor role only, /admin/ for no one but those allowed by name.
Per student, `lab deny NAME PATH` and `lab allow NAME PATH` (kept in
access.yml) add rules before the lesson's: denying is not revoking, the
certificate stays valid. lab writes two maps nginx includes from crl/ (made
anew from the CA database and access.yml) and reloads the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab.core import layout
from lab.core.errors import UsageError
from lab.core.files import write_atomically

ROLES = ("student", "instructor")
#: The paths the lesson rules on, and who may reach each.
PATHS = {"/hello-world.txt": "every valid certificate", "/instructor/": "the instructor role",
         "/admin/": "no one, unless allowed by name"}
ACCESS_FILE = "access.yml"
IDENTITIES_FILE = "identities.map"     # written by lab/pki/ca.py, from the CA database
RULES_FILE = "access.map"


@dataclass
class Rules:
    deny: dict[str, list[str]] = field(default_factory=dict)     # login -> paths
    allow: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"deny": self.deny, "allow": self.allow}


def role_of(subject: str) -> str:
    """The role a subject (as index.txt writes it) carries: a second OU, or student."""
    return next((r for r in ROLES if f"/OU={r}/" in subject + "/"), "student")


def load(lab_dir: Path) -> Rules:
    path = lab_dir / ACCESS_FILE
    if not path.is_file():
        return Rules()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UsageError(f"{path} is not valid YAML: fix it, or delete it to go back to the lesson's rules") from None
    rules = Rules()
    for kind in ("deny", "allow"):
        section = data.get(kind) or {}
        if not isinstance(section, dict) or not all(isinstance(v, list) for v in section.values()):
            raise UsageError(f"{path}: {kind} must map logins to lists of paths")
        setattr(rules, kind, {str(k): [str(p) for p in v] for k, v in section.items()})
    return rules


def save(lab_dir: Path, rules: Rules) -> None:
    text = ("# Written by `lab allow` / `lab deny`: per student, before the lesson's rules (lab/pki/access.py).\n"
            + yaml.safe_dump(rules.to_dict(), sort_keys=True, allow_unicode=True))
    write_atomically(lab_dir / ACCESS_FILE, text, root=lab_dir)


def forget(lab_dir: Path, login: str) -> bool:
    """A student removed: their own rules go too; True when they had some."""
    rules = load(lab_dir)
    if login not in rules.allow and login not in rules.deny:
        return False
    rules.allow.pop(login, None)
    rules.deny.pop(login, None)
    save(lab_dir, rules)
    write_rules(lab_dir)
    return True


def check_path(path: str) -> str:
    if path not in PATHS:
        raise UsageError(f"no rule for {path!r}: the mTLS server rules on {', '.join(PATHS)}")
    return path


def decide(login: str, role: str, path: str, rules: Rules) -> tuple[bool, str]:
    """May this student reach this path, and by which rule (the same order nginx's map uses)."""
    if path in rules.allow.get(login, []):
        return True, f"allowed by name (lab allow {login} {path})"
    if path in rules.deny.get(login, []):
        return False, f"denied by name (lab deny {login} {path})"
    if path == "/instructor/":
        return (role == "instructor"), ("the instructor role" if role == "instructor" else "instructors only")
    if path == "/admin/":
        return False, "no one, unless allowed by name"
    return True, "every valid certificate"


def _pattern(login: str, path: str) -> str:
    end = "" if path.endswith("/") else "$"
    return f"~^{re.escape(login)}:[a-z]+ {re.escape(path)}{end}"


def rules_text(rules: Rules) -> str:
    """The students' own rules, first in the server's map (nginx takes the first regex that matches)."""
    lines = ["# Made by lab from access.yml (lab allow / lab deny): a student's own rules, before the lesson's.",
             "# Not to be edited: lab allow / lab deny write it and reload the server.", ""]
    for login, paths in sorted(rules.allow.items()):
        lines += [f'"{_pattern(login, p)}" "";' for p in paths]
    for login, paths in sorted(rules.deny.items()):
        lines += [f'"{_pattern(login, p)}" "{login} is denied {p} by name (lab deny; lab allow {login} {p} undoes '
                  'it)";' for p in paths]
    return "\n".join(lines) + "\n"


def write_rules(lab_dir: Path) -> bool:
    """crl/access.map (the students' own rules), made anew when it differs; True when written."""
    from lab.core.files import write_if_changed

    return write_if_changed(lab_dir / layout.CRL_DIR / RULES_FILE, rules_text(load(lab_dir)), root=lab_dir)


@dataclass(frozen=True)
class Access:
    """One student's access, path by path: (allowed, the rule that decides)."""

    name: str
    display: str
    role: str
    paths: dict[str, tuple[bool, str]]

    def to_dict(self) -> dict:
        return {"name": self.name, "display": self.display, "role": self.role,
                "paths": {p: {"allowed": a, "rule": r} for p, (a, r) in self.paths.items()}}


def table(lab_dir: Path, students: list, roles: dict[str, str]) -> list[Access]:
    """Who may reach what: every student whose certificate works (their role from the CA database), each path."""
    rules = load(lab_dir)
    return [Access(s.name, s.shown, roles.get(s.name, "student"),
                   {p: decide(s.name, roles.get(s.name, "student"), p, rules) for p in PATHS})
            for s in students if s.status == "valid"]


def change(lab_dir: Path, login: str, role: str, path: str, allow: bool) -> tuple[bool, str]:
    """lab allow / lab deny: a student's own rule for a path (the opposite rule removed); returns the
    decision now in force."""
    check_path(path)
    rules = load(lab_dir)
    mine, other = (rules.allow, rules.deny) if allow else (rules.deny, rules.allow)
    if path in other.get(login, []):
        other[login].remove(path)
        if not other[login]:
            del other[login]
    lesson_allows, _ = decide(login, role, path, Rules())
    if lesson_allows != allow and path not in mine.get(login, []):
        mine.setdefault(login, []).append(path)   # only where the lesson's rule says otherwise
    save(lab_dir, rules)
    write_rules(lab_dir)
    return decide(login, role, path, rules)
