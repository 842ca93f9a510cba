"""What lab verify shows: a table per server, a row per scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console

if TYPE_CHECKING:
    from lab.teach.verify import Result


def verify(results: list[Result], show_commands: bool) -> None:
    out = out_console()
    for server, title in (("tls", "TLS server"), ("mtls", "mTLS server")):
        rows = [r for r in results if r.server == server]
        if not rows:
            continue
        table = new_table(f"{title} (port {rows[0].observation.port})",
                       [("", {"no_wrap": True}), ("scenario", {"no_wrap": True}), "what it shows", "expected",
                        "observed"], show_lines=show_commands, expand=False)
        for r in rows:
            mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
            shows = escape(r.shows + (f"\n$ {r.curl}" if show_commands else ""))
            observed = escape(r.observed) + (f"\n[bold]→ {escape(r.cause)}[/]" if r.cause else "")
            table.add_row(mark, r.scenario, shows, escape(r.expected), observed)
        out.print(table)
    passed = sum(r.passed for r in results)
    out.print(f"{passed} passed, {len(results) - passed} failed", markup=False)
