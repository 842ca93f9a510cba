"""lab gallery: bad client certificates, what the standards say, what nginx does; lab race: how long a revoked
student still gets in (registered by lab/cli/__init__.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lab.app import gallery, selection
from lab.cli.boundary import handles_errors
from lab.cli.options import DirOpt, ImageOpt, JsonOpt, NameOpt
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


@handles_errors
def race_cmd(
    directory: DirOpt = None, name: NameOpt = None, image: ImageOpt = None, as_json: JsonOpt = False,
    modes: Annotated[Optional[list[str]], typer.Argument(
        help="Only these modes: crl-no-reload, crl-reload, ocsp, ocsp-cache, short-lived [default: all].",
        show_default=False)] = None,
    wait: Annotated[float, typer.Option("--wait", help="The bound of every wait, in seconds (a short-lived "
                                        "certificate lives half of it).")] = 30.0,
) -> None:
    """How long a revoked student still gets in: a CRL without and with a reload, OCSP without and with a cache,
    a short-lived certificate; for a new handshake, a resumed session and an open keep-alive connection. Run in a
    lab of its own (removed afterwards): the class's lab is not touched."""
    from lab.app import race
    from lab.views import race as race_view

    with console.progress() as say:
        report = race.run(selection.select(directory, name, image=image), modes, wait, progress=say)
    console.emit_json(report.to_dict()) if as_json else race_view.race(report)
