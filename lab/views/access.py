"""What lab access, lab allow and lab deny show: who may reach what, and the rule that decides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, ok, out_console

if TYPE_CHECKING:
    from lab.app.access import AccessChange
    from lab.pki.access import Access


def table(found: list[Access]) -> None:
    """A row per student, a column per path: ✓ may reach it, ✗ refused (403); the rules below."""
    from lab.pki.access import PATHS

    out = out_console()
    grid = new_table(f"who may reach what on the mTLS server ({len(found)} students with a valid certificate)",
                     [("student", {"overflow": "fold"}), ("role", {"no_wrap": True}),
                      *((p, {"no_wrap": True, "justify": "center"}) for p in PATHS)])
    for a in found:
        marks = ["[green]✓[/]" if a.paths[p][0] else "[bold red]✗[/]" for p in PATHS]
        grid.add_row(escape(a.display if a.display == a.name else f"{a.display} ({a.name})"), a.role, *marks)
    out.print(grid)
    own = [(a, p, rule) for a in found for p, (_, rule) in a.paths.items() if rule.startswith(("allowed by", "denied by"))]
    for a, p, rule in own:
        out.print(f"  {a.name} {p}: {rule}", markup=False)
    out.print("  the lesson: " + "; ".join(f"{p} for {who}" for p, who in PATHS.items())
              + " (lab allow / lab deny NAME PATH)", markup=False)


def changed(c: AccessChange) -> None:
    who = c.student.shown if c.student.shown == c.student.name else f"{c.student.shown} ({c.student.name})"
    verdict = "may reach" if c.allowed else "is refused (HTTP 403)"
    ok(f"{who} {verdict} {c.path}: {c.rule}; the certificate stays {c.student.status} (serial {c.student.serial})")
    out_console().print("  the mTLS server loaded the rule without downtime" if c.enforced else
                        "  the lab is not running: the rule applies when it starts", markup=False)
