"""lab access, lab allow, lab deny: who may reach what on the mTLS server (registered by lab/cli/__init__.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from lab.app import access, selection
from lab.cli.boundary import handles_errors
from lab.cli.options import DirOpt, JsonOpt, NameOpt
from lab.views import access as access_view
from lab.views import console

StudentArg = Annotated[str, typer.Argument(help="Student (login, or display name).")]
PathArg = Annotated[str, typer.Argument(help="/hello-world.txt, /instructor/ or /admin/.")]


@handles_errors
def access_cmd(directory: DirOpt = None, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """Who may reach what on the mTLS server: each student whose certificate works, each path, the rule deciding."""

    found = access.table(selection.select(directory, name, require=True))
    console.emit_json(found) if as_json else access_view.table(found)


@handles_errors
def allow_cmd(
    student: StudentArg, path: PathArg, directory: DirOpt = None, name: NameOpt = None,
) -> None:
    """Let a student reach a path (or undo a deny): a reload without downtime, no certificate touched."""

    access_view.changed(access.change(selection.select(directory, name, require=True), student, path, allow=True))


@handles_errors
def deny_cmd(
    student: StudentArg, path: PathArg, directory: DirOpt = None, name: NameOpt = None,
) -> None:
    """Refuse a student a path (HTTP 403) while their certificate stays valid: denying is not revoking."""

    access_view.changed(access.change(selection.select(directory, name, require=True), student, path, allow=False))
