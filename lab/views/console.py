"""The consoles and the common look: results on stdout (a table, or with
--json only data), progress, warnings and errors on stderr, so `lab … --json | jq`
always reads clean data. Every view module draws with these."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from rich.console import Console
    from rich.table import Table

    from lab.core.errors import LabError


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console(**options: Any) -> Console:
    """A rich console on stdout for which a closed pipe is no error (`lab up | head -1`:
    the reader has what it wanted; rich's default exits 1)."""
    from rich.console import Console

    class _Stdout(Console):
        def on_broken_pipe(self) -> None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            raise SystemExit(0)

    return _Stdout(highlight=False, **options)


def out_console() -> Console:
    console = stdout_console(soft_wrap=True)
    if os.environ.get("LAB_WIDE"):
        console.width = max(console.width, 160)      # lab --wide: the full tables, whatever the terminal
    elif not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or saved for a handout: don't squeeze the tables into 80 columns.
        console.width = 160
    return console


#: At this width or less the output is laid out for a projector: one fact a column, nothing cut.
PROJECTOR_WIDTH = 100


def projector(console: Console) -> bool:
    """The projector's layout: 100 columns or fewer, unless `lab --wide` asked for the full tables."""
    return console.width <= PROJECTOR_WIDTH and not os.environ.get("LAB_WIDE")


def name_grid(title: str, marked: Sequence[tuple[str, str]], width: int) -> Table:
    """Names, each whole with its mark (markup, e.g. "[green]✓[/]"), in as many columns as fit `width`, each
    column as wide as its longest name: thirty students, one of them with a long name, on one 24-line screen."""
    from rich.cells import cell_len
    from rich.table import Table

    sizes = [cell_len(name) + 2 for _, name in marked]          # the mark, a space, the name
    columns = 1
    for n in range(len(sizes), 1, -1):
        widths = [max(sizes[i::n]) for i in range(n)]
        if sum(widths) + (n - 1) * 2 <= width - 1:
            columns = n
            break
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.title = title
    grid.title_justify = "left"
    for _ in range(columns):
        grid.add_column(no_wrap=True)
    cells = [f"{mark} {escape(name)}" for mark, name in marked]
    for i in range(0, len(cells), columns):
        grid.add_row(*cells[i:i + columns])
    return grid


def new_table(title: str, columns: Sequence[str | tuple[str, dict[str, Any]]], **options: Any) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **options)
    for col in columns:
        if isinstance(col, tuple):
            table.add_column(col[0], **col[1])
        else:
            table.add_column(col)
    return table


def plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return plain(value.to_dict() if hasattr(value, "to_dict") else asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(data: Any) -> None:
    """Data only, on stdout."""
    import typer

    typer.echo(json.dumps(plain(data), indent=2))


def error(e: LabError) -> None:
    """A LabError as one line (and its details and fix under it), on stderr."""
    err = err_console()
    err.print(f"[bold red]ERROR:[/] {escape(str(e))}", markup=True, soft_wrap=True)   # paths may hold [ ]
    if e.details:
        for line in e.details.splitlines():
            err.print(f"  | {line}", markup=False, soft_wrap=True)
    if e.hint:
        err.print(f"  fix: {e.hint}", markup=False, soft_wrap=True)


def note(text: str) -> None:
    err_console().print(text, markup=False)


def warn(text: str) -> None:
    err_console().print(f"[yellow]warning:[/] {escape(text)}")


@contextlib.contextmanager
def progress(first: str = "working…") -> Iterator[Callable[[str], None]]:
    """A spinner on stderr; yields the callback the use cases report progress with.
    No terminal (a pipe, CI, a log): no spinner to draw, so none is made."""
    console = err_console()
    if not console.is_terminal:
        yield lambda _msg: None
        return
    with console.status(first) as status:
        yield lambda msg: status.update(msg)


def human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def escape(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def ok(*parts: str | tuple[str, str]) -> None:
    """✓ and a line of plain text (paths and names are never read as markup); (text, style) parts are styled."""
    from rich.text import Text

    out_console().print(Text.assemble(("✓", "green"), " ", *parts))
