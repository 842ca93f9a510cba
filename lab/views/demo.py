"""The demo's screens: its list of steps and one step's screen, 80 columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, stdout_console

if TYPE_CHECKING:
    from rich.console import Console

    from lab.app.demo import Departures
    from lab.teach.demo import Screen


def demo_list(titles: list[str]) -> None:
    import typer

    for i, title in enumerate(titles, 1):
        typer.echo(f"{i:>2}. {title}")


def demo_console() -> Console:
    """80 columns, high contrast; NO_COLOR is honoured by rich itself."""
    return stdout_console(width=80, soft_wrap=False)


def demo_screen(console: Console, sc: Screen, run: int = 1) -> None:
    again = f"  (run {run})" if run > 1 else ""     # r shows it did something: the screen may look the same
    console.print(f"[bold black on bright_white] {sc.number}/{sc.total}  {escape(sc.title)}{again} [/]")
    console.print()
    for line in sc.text:
        console.print(line, markup=False)
    console.print()
    # Lines are already cut to 80 columns (lab/teach/demo.py): rich must not wrap them again.
    for line in sc.commands:
        console.print(f"[bold bright_cyan]{escape(line)}[/]", soft_wrap=True)
    for line in sc.output:
        console.print(f"  {escape(line)}", style="bright_white", soft_wrap=True)
    if not sc.seen:
        console.print(f"[bold bright_red]  (expected to see: {escape(sc.expected)})[/]")


def departure_lines(d: Departures) -> list[str]:
    lines = []
    if d.exercise:
        lines.append(f"exercise {d.exercise} is running in this lab: some steps will not show what they should "
                     f"(lab exercise reset ends it)")
    if d.edited:
        lines.append(f"edited by hand: {', '.join(d.edited)}: the demo shows the lab as it is (lab diff; lab reset)")
    return lines
