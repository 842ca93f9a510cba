"""The demo player: the keyboard (one key at a time, unechoed, for the whole
demo), and the screens in turn. Enter next, b back, r rerun, q quit (or
Ctrl-C); the terminal is given back however the demo ends."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from lab.views.console import err_console, escape
from lab.views.demo import demo_console, demo_screen, departure_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lab.app.demo import Departures
    from lab.teach.demo import Screen, Step


@contextlib.contextmanager
def _keys_unechoed(interactive: bool) -> Iterator[None]:
    """For the whole demo, keys are read one at a time and not echoed (a key pressed while a step
    runs must not print on the projector); the terminal is restored however the demo ends."""
    import sys

    if not interactive:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)     # Ctrl-C still interrupts (ISIG stays on)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _typed_meanwhile() -> str:
    """What was typed while the step ran (read without waiting)."""
    import select
    import sys

    fd, typed = sys.stdin.fileno(), b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        typed += chunk
    return typed.decode(errors="replace").lower()


def _key(auto: float | None) -> str:
    """The next key: Enter (next), b, r or q; one keypress on a terminal, a line otherwise; after N s with --auto."""
    import sys
    import time

    if auto is not None:
        time.sleep(auto)
        return ""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return "q" if line == "" else line.strip().lower()[:1]
    ch = os.read(sys.stdin.fileno(), 1).decode(errors="replace")
    return "" if ch in ("\n", "\r", " ") else ch.lower()


def demo(steps: list[Step], start: int, auto: float | None, run_step: Callable[[int], Screen],
         departures: Departures | None = None) -> None:
    """Show step after step; Enter next, b back, r rerun, q quit (or Ctrl-C): exit 0 either way."""
    import sys

    interactive = auto is None and sys.stdin.isatty()
    with _keys_unechoed(interactive):
        _demo(steps, start, auto, run_step, departures, interactive)


def _demo(steps: list[Step], start: int, auto: float | None, run_step: Callable[[int], Screen],
          departures: Departures | None, interactive: bool) -> None:
    console = demo_console()
    number, run = start, 1
    warnings = departure_lines(departures) if departures else []
    for line in warnings:       # before the first step: nothing on the projector should surprise the room
        err_console().print(f"[bold yellow]note:[/] {escape(line)}")
    if warnings and interactive:
        console.print("[dim]Enter: start the demo all the same   q: quit[/]")
        try:
            if _key(auto) == "q":
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            console.print("demo not started")
            return
    try:
        while 1 <= number <= len(steps):
            if interactive:
                console.clear()
            sc = run_step(number)
            # Keys typed while the step ran: a q still quits (once the step is shown); anything else
            # is dropped, so that a second Enter pressed in impatience does not skip a step unseen.
            quit_now = interactive and "q" in _typed_meanwhile()
            demo_screen(console, sc, run)
            if quit_now:
                break
            last = number == len(steps)
            console.print()
            console.print("[dim]Enter: " + ("end" if last else "next") + "   b: back   r: run again   q: quit[/]"
                          if auto is None else "")
            key = _key(auto)
            if key == "q":
                break
            run = run + 1 if key == "r" else 1
            if key == "b":
                number = max(1, number - 1)
            elif key != "r":
                number += 1
    except KeyboardInterrupt:
        pass
    console.print(f"demo ended at step {min(number, len(steps))} of {len(steps)}"
                  + (f" (lab demo --from {number} goes on from there)" if number < len(steps) else ""))
