"""lab handout and lab room: what students get, and who of them connected (registered by lab/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lab.app import selection, students
from lab.cli.boundary import STOPS, handles_errors
from lab.cli.options import DirOpt, JsonOpt, NameOpt
from lab.views import console
from lab.views import room as room_view
from lab.views import students as students_view


@handles_errors
def handout_cmd(
    names: Annotated[Optional[list[str]], typer.Argument(help="Students [or --all].", show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None,
    all_students: Annotated[bool, typer.Option("--all", help="Every student whose certificate works.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the zips [default: LAB/handouts].",
                                                show_default=False)] = None,
    slips: Annotated[bool, typer.Option("--slips", help="Also a page to print: a slip per student (name, login, "
                                        "URL, password) in passwords/slips.html.")] = False,
) -> None:
    """A zip per student (certificate, encrypted key, modern and legacy .p12, server CA, README) and the password
    sheet (passwords/roster.csv, never beside the zips)."""

    made, sheet, skipped, page = students.handouts(selection.select(directory, name, require=True), names, all_students,
                                                   out, slips)
    students_view.handouts(made, sheet, skipped, page)


@handles_errors(on_interrupt=STOPS)
def room_cmd(
    directory: DirOpt = None, name: NameOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Refresh in place as students connect (Ctrl-C stops).")] = False,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Leave out requests before this time (a rehearsal): HH:MM today, or 2026-12-02T09:30.",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who has connected: per student last seen, requests, last verdict, address; who has not yet.
    lab's own requests (verify, --as, revocation proofs) and the demo's throwaway student are not counted."""
    students.since_time(since)   # a bad --since fails before the lab is read
    lab = selection.select(directory, name, require=True)
    if follow and not as_json:
        room_view.room_follow(students.room_updates(lab, since))
        return
    found = students.room(lab, since)
    console.emit_json(found) if as_json else room_view.room(found)
