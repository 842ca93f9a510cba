"""The demo's use cases: its steps, a running lab for it, how the lab departs
from the lesson, and each step run for real (the keyboard loop is the face's:
lab/player.py)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from lab.app.lesson import handshake
from lab.app.lifecycle import UpReport, up
from lab.app.selection import Lab, Progress, quiet
from lab.app.students import add_students, revoke
from lab.core import layout
from lab.core.errors import LabError

if TYPE_CHECKING:
    from lab.teach.demo import Screen, Step


def demo_steps() -> list[Step]:
    from lab.teach import demo

    return demo.load()


def demo_ready(lab: Lab, progress: Progress = quiet) -> Optional[UpReport]:
    """The demo runs on a running lab: start one when none is up (and say so: the report)."""
    from lab.engine import runtime

    if (lab.dir / layout.SETTINGS_FILE).is_file():
        engine = runtime.connect()
        if all((found := runtime.server_state(engine, lab.name, server)) and found[1] == "running"
               for server in layout.SERVERS):
            return None
    return up(lab, progress=progress)


@dataclass(frozen=True)
class Departures:
    """How the lab differs from the lesson a demo (or a reader) expects."""
    exercise: Optional[str]        # the id of the exercise running in it
    edited: list[str]              # files edited by hand (lab diff)


def departures(lab: Lab) -> Departures:
    from lab.config import render as rendering
    from lab.teach import exercise

    running = exercise.current(lab.dir)
    try:
        edited = [e.file for e in rendering.edits(lab.dir, lab.settings)]
    except LabError:            # an edit that is not text: it is an edit all the same
        edited = ["(a file that is not text)"]
    return Departures(running.id if running else None, edited)


def demo_step(lab: Lab, steps: list[Step], number: int) -> Screen:
    """Run step `number` (1-based) for real; returns the Screen to show."""
    from lab.teach import demo
    from lab.teach import handshake as hs

    step = steps[number - 1]
    subs = demo.values(lab.dir, lab.settings)
    if step.kind == "handshake":
        seen = handshake(lab, step.scenario)
        cmd = hs.rooted(seen.argv, subs["lab"])
        return demo.screen(number, len(steps), step, subs, [cmd], demo.trim("\n".join(demo.handshake_lines(seen)), ()))
    if step.kind == "revoke":
        return _demo_revocation(lab, steps, number, subs)
    if step.kind == "race":
        return _demo_race(lab, steps, number, subs)
    cmd = [str(a).format_map(subs) for a in step.run]
    return demo.screen(number, len(steps), step, subs, [cmd], demo.run_command(cmd, step.keep))


def _demo_revocation(lab: Lab, steps: list[Step], number: int, subs: dict[str, str]) -> Screen:
    """Issue (or re-issue) the throwaway student, revoke it live, and show the next request refused."""
    from lab.pki import students
    from lab.teach import demo
    from lab.teach import verify as checks

    name = demo.THROWAWAY
    exists = (layout.clients_dir(lab.dir) / name).is_dir()
    add_students(lab, [name], None, force=exists, legacy_p12=False, demo=True)
    student = students.find(lab.dir, name)
    # The same request before and after, with paths as typed from where the demo runs: first let in…
    curl = shlex.split(checks.curl_command(checks.revoked_scenario(student), Path(subs["lab"]), lab.settings))
    before = demo.run_command(curl, ("^HTTP/",))
    revoke(lab, name)
    after = demo.run_command(curl, ("^HTTP/", "X-Client-Verify", "SSL certificate error"))        # …then refused
    said = [f"before: {' '.join(before)}", f"$ lab client revoke {name}: the mTLS server reloaded without downtime",
            "the same request again:"]
    return demo.screen(number, len(steps), steps[number - 1], subs, [curl], said + after)


# The demo's race: three modes, a short bound (a room waits 20 s, not three minutes); lab race does them all.
DEMO_RACE_MODES = ["crl-no-reload", "crl-reload", "ocsp"]
DEMO_RACE_WAIT = 4.0


def _demo_race(lab: Lab, steps: list[Step], number: int, subs: dict[str, str]) -> Screen:
    """The revocation race, short: a line per mode, what each kind of connection got after the revocation."""
    from lab.app import race
    from lab.teach import demo

    report = race.run(lab, DEMO_RACE_MODES, DEMO_RACE_WAIT)
    cmd = ["lab", "race", *DEMO_RACE_MODES, "--wait", f"{DEMO_RACE_WAIT:g}"]
    lines = [f"in: still admitted after {DEMO_RACE_WAIT:g} s; out@T: refused T s after the revocation",
             f"(in a lab of its own, {report.lab_name}, removed)"]
    for r in report.races:
        told = [f"{o.kind.split()[0]} " + ("in" if o.refused_after is None else f"out@{o.refused_after:.1f}s")
                for o in r.outcomes]
        lines.append(f"{r.mode:<14}{'  '.join(told)}")
    return demo.screen(number, len(steps), steps[number - 1], subs, [cmd], lines)


def titles(lab: Lab, steps: list[Step]) -> list[str]:
    """The steps' titles with this lab's ports (the defaults when there is no lab yet)."""
    from lab.teach import demo

    made = (lab.dir / layout.SETTINGS_FILE).is_file()
    return demo.titles(steps, demo.values(lab.dir, lab.settings) if made else None)


def check_from(start: int, steps: list[Step]) -> int:
    """--from N names a step of the demo."""
    from lab.teach import demo

    return demo.check_from(start, steps)
