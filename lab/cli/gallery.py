"""lab gallery: bad client certificates, what the standards say, what nginx does (registered by lab/cli/__init__.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lab.app import gallery, selection
from lab.cli.boundary import handles_errors
from lab.cli.options import DirOpt, JsonOpt, NameOpt
from lab.views import console
from lab.views import gallery as gallery_view


@handles_errors
def gallery_cmd(
    named: Annotated[Optional[list[str]], typer.Argument(help="Only these certificates (each told in full).",
                                                         show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None, as_json: JsonOpt = False,
    again: Annotated[bool, typer.Option("--again", help="Make the gallery's certificates anew first.")] = False,
) -> None:
    """Bad client certificates sent to the mTLS server: what is wrong with each, the rule it breaks, what a
    strict validator does, what nginx did; exit 1 when one did not get the verdict the lab documents."""
    run = gallery.run(selection.select(directory, name, require=True), only=named or None, again=again)
    console.emit_json(run.report) if as_json else gallery_view.gallery(run, named=bool(named))
    if run.failure:
        raise run.failure
