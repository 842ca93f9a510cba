"""The one error boundary: LabError becomes a one-line message and a documented
exit code here, and nowhere else; an interrupt says what is true of the
command it stopped; a closed pipe is no error."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import typer

from lab.app import failures
from lab.core import trace
from lab.core.errors import Interrupted, LabError
from lab.views import console

Command = TypeVar("Command", bound=Callable[..., Any])


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's last flush stays quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class Done:
    """`with Done("lab x is up"):` around the printing of a finished command: a
    Ctrl-C there says what really happened (the work is done), not "removed"."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> Done:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: object) -> Literal[False]:
        if kind is KeyboardInterrupt:
            raise Interrupted(f"interrupted while printing: {self.what}") from None
        return False


#: What a Ctrl-C means, by kind of command. A command that undoes what it made (up, render) says so; a
#: command that only reads or follows (logs, room --follow) is simply stopped (exit 0, as its help says);
#: any other is interrupted (exit 130) with no claim: where a step was held to the end or undone, the
#: command's own Interrupted error says what was kept.
ROLLS_BACK = "interrupted: what this run made was removed"
STOPS = ""
INTERRUPTED = "interrupted"


def handles_errors(command: Command | None = None, *, on_interrupt: str = INTERRUPTED) -> Any:
    """The one boundary where LabError becomes a message and an exit code
    (`@handles_errors`, or `@handles_errors(on_interrupt=ROLLS_BACK)`).
    Anything unforeseen keeps its traceback: that is a bug to report."""
    if command is None:
        return functools.partial(handles_errors, on_interrupt=on_interrupt)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        trace.started()
        try:
            with trace.span("the command, start to end"):
                return command(*args, **kwargs)
        except LabError as e:
            console.error(e)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            if on_interrupt == STOPS:
                raise typer.Exit(0) from None
            console.note(on_interrupt)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `lab up | head -1`: the reader has what it wanted; that is no error.
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as e:
            expected = failures.expected(e)
            if expected is None:
                raise
            console.error(expected)
            raise typer.Exit(expected.exit_code) from None

    return cast(Command, wrapper)
