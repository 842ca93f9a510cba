"""What lab race shows: per mode of revocation, per kind of connection, how long the revoked student still
got in. Laid out for an 80-column projector: the mode once, then one short line per connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console

if TYPE_CHECKING:
    from lab.app.race import RaceReport
    from lab.teach.race import Outcome


def _when(o: Outcome) -> str:
    if o.refused_after is None:
        return "[bold red]still in[/]"
    return f"[green]refused[/] at +{o.refused_after:.1f} s" if o.refused_after >= 0.05 else "[green]refused[/] at once"


def _how(o: Outcome) -> str:
    extra = ""
    if o.kind == "resumed session" and o.resumed is False:
        extra = " (not resumed: a full handshake)"
    return escape(o.how + extra)


def race(report: RaceReport) -> None:
    out = out_console()
    out.print(f"The revocation race, on {report.image}", markup=False)
    out.print(f"  (in a lab of its own, {report.lab_name}, removed since)", markup=False)
    table = new_table("", [("connection", {"no_wrap": True}), ("the revoked student", {"no_wrap": True}),
                       ("how", {"overflow": "fold"})])
    for r in report.races:
        table.add_row(f"[bold]{r.mode}[/]", "", f"[bold]{escape(r.what)}[/]")
        for o in r.outcomes:
            table.add_row(f"  {o.kind}", _when(o), _how(o))
    out.print(table)
    out.print(f"  every wait bounded: {', '.join(f'{r.mode} {r.waited:g} s' for r in report.races)}", markup=False)
    out.print("  a connection kept open is never asked again", markup=False)
