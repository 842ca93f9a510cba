"""The room: who of the students has connected, once or refreshed in place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.table import Table

    from lab.teach.room import Room


def _labels(found: Room) -> dict[str, str]:
    """Each student by their display name; two of the same name told apart by login."""
    shown = [s.shown for s in found.students.values()]
    return {s.name: s.shown if shown.count(s.shown) == 1 or s.shown == s.name else f"{s.shown} ({s.name})"
            for s in found.students.values()}


def _room_grid(found: Room, width: int) -> Table:
    """The projector's room (100 columns or fewer): every name whole, a mark each, in as many columns as fit,
    so that 30 students fit a 24-line screen: ✓ connected, ✗ tried and refused, · not yet."""
    from lab.views.console import name_grid

    label = _labels(found)
    names = sorted(found.students.values(), key=lambda s: (not s.connected, not s.requests, label[s.name]))
    return name_grid(f"{found.connected} of {found.total} students connected   ✓ connected  ✗ tried, refused  · not yet",
                     [("[green]✓[/]" if s.connected else "[red]✗[/]" if s.requests else "[dim]·[/]", label[s.name])
                      for s in names], width)


def _room_table(found: Room) -> Table:
    from lab.views.console import projector

    out = out_console()
    if projector(out):
        return _room_grid(found, out.width)
    table = new_table(f"{found.connected} of {found.total} students connected", ("student", "connected", "requests",
                   "last verdict", "last seen", "address"))
    label = _labels(found)
    for st in sorted(found.students.values(), key=lambda s: (not s.connected, label[s.name])):
        mark = "[green]yes[/]" if st.connected else ("[yellow]tried[/]" if st.requests else "[dim]not yet[/]")
        verdict = st.last_verdict or "-"
        verdict = f"[green]{verdict}[/]" if verdict == "SUCCESS" else (f"[red]{escape(verdict)}[/]"
                                                                       if verdict != "-" else verdict)
        table.add_row(escape(label[st.name]), mark, str(st.requests), verdict, (st.last_seen or "-")[:19].replace("T", " "),
                      st.address or "-")
    return table


def room(found: Room) -> None:
    from lab.views.console import projector

    out = out_console()
    out.print(_room_table(found))
    label = _labels(found)
    missing = [label[s.name] for s in found.students.values() if not s.requests]
    if missing and not projector(out):      # the projector's grid marks them already
        out.print(f"  not seen yet: {', '.join(missing)}", markup=False)


def room_follow(updates: Iterator[Room]) -> None:
    """Refresh in place (four times a second, from the latest counts); Ctrl-C stops (exit 0)."""
    from rich.live import Live

    class View:
        def __init__(self, found: Room):
            self.found = found

        def __rich__(self) -> Table:
            return _room_table(self.found)

    try:
        view = View(next(updates))
        with Live(view, console=out_console(), refresh_per_second=4):
            for found in updates:
                view.found = found
    except (KeyboardInterrupt, StopIteration):
        pass
