"""What diff, reset and reload show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import err_console, ok, out_console

if TYPE_CHECKING:
    from lab.app.edits import ResetReport
    from lab.app.servers import Reloaded
    from lab.config.render import Edit


def diff(found: list[Edit]) -> None:
    import typer

    for e in found:
        typer.echo(e.diff, nl=not e.diff.endswith("\n"))
    if not found:
        err_console().print("no edits: every rendered file is as the lesson has it", markup=False)


def reloaded(done: list[Reloaded]) -> None:
    for r in done:
        what = f"it now runs your {', '.join(r.files)}" if r.files else "nothing had changed since its last load"
        ok(f"{r.server} server reloaded without downtime (nginx -t passed; no old worker left): {what}")


def reset(report: ResetReport) -> None:
    out = out_console()
    if not report.restored:
        ok("nothing to reset: every rendered file is as the lesson has it")
    for rel, backup in report.restored:
        ok(f"{rel} is the lesson's again; your edited copy is kept as {backup.name}")
    for r in report.reloaded:
        out.print(f"  the {r.server} server reloaded: it serves the lesson's {', '.join(r.files)}", markup=False)
