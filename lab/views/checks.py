"""What lab verify shows: a table per server, a row per scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console, projector

if TYPE_CHECKING:
    from lab.teach.verify import Result


def _compact(results: list[Result], show_commands: bool, shows: bool = False) -> None:
    """The projector's layout (100 columns or fewer): a line per scenario, mark, name, what was observed;
    for a failure, what was expected and why. Prose wraps under the name; nothing is cut."""
    from rich.table import Table

    out = out_console()
    for server, title in (("tls", "TLS server"), ("mtls", "mTLS server")):
        rows = [r for r in results if r.server == server]
        if not rows:
            continue
        out.print(f"[bold]{title}[/] (port {rows[0].observation.port})")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for r in rows:
            mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
            # A line a row on the projector; the subject the server saw is for lab verify NAME (and --explain).
            seen = r.observed if shows or not r.passed else (r.short or r.observed)
            text = escape(seen) if r.passed else (f"expected {escape(r.expected)}\n→ observed {escape(seen)}"
                                                          + (f"\n[bold]→ {escape(r.cause)}[/]" if r.cause else ""))
            if shows:          # lab verify SCENARIO: what it shows, under what was seen, and where it stopped
                text += f"\n[italic]{escape(r.shows)}[/] (layer: {r.layer})"
            if show_commands:
                text += f"\n[dim]$ {escape(r.curl)}[/]"
            grid.add_row(mark, r.scenario, _LAYER.get(r.layer, r.layer), text)
        out.print(grid)


#: Where a request stopped, in a word on the projector (`lab verify NAME` and --explain say it in full).
_LAYER = {"handshake": "handshake", "authentication": "authn", "authorization": "authz", "served": "served",
          "connection": "no conn"}
LEGEND = "authn: the certificate refused (400) · authz: the identity refused (403)"


def verify(results: list[Result], show_commands: bool, explain: bool = False, named: bool = False) -> None:
    """The results: on the projector a line each (`named`: the scenarios asked for by name, each with what it
    shows under it), else, or with `explain`, a table with what each one shows."""
    out = out_console()
    if projector(out) and not explain:
        _compact(results, show_commands, shows=named)
        if any(r.layer in ("authentication", "authorization") for r in results) and not named:
            out.print(LEGEND, style="dim", markup=False)
        passed = sum(r.passed for r in results)
        out.print(f"{passed} passed, {len(results) - passed} failed"
                  + ("" if named else "   (what each shows: lab verify --explain, or NAME)"),
                  markup=False)
        return
    for server, title in (("tls", "TLS server"), ("mtls", "mTLS server")):
        rows = [r for r in results if r.server == server]
        if not rows:
            continue
        table = new_table(f"{title} (port {rows[0].observation.port})",
                       [("", {"no_wrap": True}), ("scenario", {"no_wrap": True}), "what it shows",
                        ("layer", {"no_wrap": True}), "expected", "observed"], show_lines=show_commands, expand=False)
        for r in rows:
            mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
            shows = escape(r.shows + (f"\n$ {r.curl}" if show_commands else ""))
            observed = escape(r.observed) + (f"\n[bold]→ {escape(r.cause)}[/]" if r.cause else "")
            table.add_row(mark, r.scenario, shows, r.layer, escape(r.expected), observed)
        out.print(table)
    passed = sum(r.passed for r in results)
    out.print(f"{passed} passed, {len(results) - passed} failed", markup=False)
