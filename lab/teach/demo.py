"""`lab demo`: the lesson, one step a screen, from a data file (lesson/demo.yml).

Each step runs a real command (openssl, curl, grep) in the directory the demo
runs from, with paths as a student would type them there, and keeps the lines
of its output that matter; two kinds of step use lab itself: the handshake
diagram of a scenario, and a live revocation of a throwaway student. Steps
return data (Screen); lab/views/demo.py shows them, at most 80 columns wide.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.errors import LabError, UsageError
from lab.pki.students import DEMO_STUDENT

if TYPE_CHECKING:
    from lab.teach.handshake import Handshake

WIDTH = 80
MAX_OUTPUT_LINES = 10
THROWAWAY = DEMO_STUDENT    # issued and revoked live by the revocation step


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    run: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    expect: str = ""
    kind: str = "run"              # run / handshake / revoke / race
    scenario: str = "client-cert"


@dataclass
class Screen:
    """One step, done: what to show."""

    number: int
    total: int
    title: str
    text: list[str]                # wrapped lines
    commands: list[str]            # each wrapped to the width with ` \\` continuations
    output: list[str]
    expected: str = ""
    seen: bool = True              # the expected text was in the output
    lines: list[str] = field(default_factory=list)


def load(path: Path | None = None) -> list[Step]:
    import yaml

    from lab.core.resources import demo_file
    from lab.core.settings import parse_yaml

    path = path or demo_file()
    try:
        doc = parse_yaml(path.read_text(encoding="utf-8"))
        steps = [Step(str(s["title"]), " ".join(str(s.get("text", "")).split()), tuple(s.get("run") or ()),
                      tuple(s.get("keep") or ()), str(s.get("expect", "")), str(s.get("kind", "run")),
                      str(s.get("scenario", "client-cert")))
                 for s in doc["steps"]]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise LabError(f"the demo's steps ({path}) cannot be read ({e.__class__.__name__}: {e})",
                       hint="fix the file: its first lines say what a step holds") from None
    for s in steps:
        if s.kind not in ("run", "handshake", "revoke", "race") or (s.kind == "run" and not s.run):
            raise LabError(f"demo step {s.title!r} has no command (run:) or an unknown kind {s.kind!r}",
                           hint=f"fix {path}")
    return steps


def check_from(start: int, steps: list[Step]) -> int:
    if not 1 <= start <= len(steps):
        raise UsageError(f"--from {start}: the demo has steps 1 to {len(steps)} (lab demo --list)")
    return start


def titles(steps: list[Step], subs: dict[str, Any] | None = None) -> list[str]:
    """Step titles for --list: with a lab's ports (its `values`), else the defaults."""
    from lab.core import layout

    subs = subs or {"lab": layout.DEFAULT_NAME, "tls_port": layout.DEFAULT_TLS_PORT,
                    "mtls_port": layout.DEFAULT_MTLS_PORT, "host": "localhost"}
    return [s.title.format_map(subs) for s in steps]


def values(lab_dir: Path, settings) -> dict:
    rel = os.path.relpath(lab_dir.absolute(), Path.cwd())
    return {"lab": rel, "tls_port": settings.tls_port, "mtls_port": settings.mtls_port, "host": "localhost"}


def handshake_lines(seen: Handshake) -> list[str]:
    """The messages a lesson needs, one line each, up to the client's Finished (lab handshake shows them all)."""
    from lab.teach.handshake import carries

    shown = []
    for m in seen.messages:
        if m.type not in ("EncryptedExtensions", "ChangeCipherSpec") and not (m.sender == "server" and m.type == "Finished"):
            shown.append(m)
        if m.sender == "client" and m.type in ("Finished", "Alert"):
            break
    lines = [f"{'→' if m.sender == 'client' else '←'} {m.sender:<6} {m.type:<19}{carries(m, brief=True)}" for m in shown]
    return lines + [f"then HTTP {seen.http_status}; nginx's verdict: {seen.verdict}"]


def wrap_command(cmd: list[str], width: int = WIDTH) -> list[str]:
    """`$ command`, wrapped at argument boundaries with ` \\` so the lines paste as one command."""
    lines, line = [], "$"
    for arg in (shlex.quote(a) for a in cmd):
        if len(line) + 1 + len(arg) > width - 2 and line not in ("$", "  "):
            lines.append(line + " \\")
            line = "  " + arg
        else:
            line += " " + arg
    return lines + [line]


def trim(text: str, keep: tuple[str, ...], width: int = WIDTH - 2) -> list[str]:
    """The lines that matter, each at most `width` wide (output is shown indented by two)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if keep:
        pattern = re.compile("|".join(keep))
        lines = [line for line in lines if pattern.search(line)]
    out: list[str] = []
    for line in lines:    # a long line is wrapped, not cut: a name at its end still shows
        out += [line] if len(line) <= width else textwrap.wrap(line.strip(), width, subsequent_indent="    ")
    if len(out) > MAX_OUTPUT_LINES:
        out = out[:MAX_OUTPUT_LINES - 1] + [f"… ({len(out) - MAX_OUTPUT_LINES + 1} more lines)"]
    return out


def run_command(cmd: list[str], keep: tuple[str, ...]) -> list[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return [f"({cmd[0]} is not installed here)"]
    except subprocess.TimeoutExpired:
        return [f"({cmd[0]} got no answer within 20 s)"]
    return trim(proc.stdout + proc.stderr, keep)


def screen(number: int, total: int, step: Step, subs: dict, commands: list[list[str]], output: list[str]) -> Screen:
    title = step.title.format_map(subs)
    text = textwrap.wrap(step.text.format_map(subs), WIDTH - 2)
    wrapped = [line for cmd in commands for line in wrap_command(cmd)]
    seen = not step.expect or any(step.expect in line for line in output)
    return Screen(number, total, title, text, wrapped, output, step.expect, seen)
