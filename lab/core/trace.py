"""Where a command's time goes, for the benchmarks (bench/compare.py, bench/room.py): with LAB_TRACE=FILE set,
each span (`with span("engine: start")`) appends one JSON line {"span", "seconds", "count"} to FILE when the
command ends; without it a span costs one dictionary lookup. Nothing is printed: the benchmark reads the file.

A span entered many times (the per-student work of a class) is summed, with its count.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator

_FILE = os.environ.get("LAB_TRACE", "")
_spans: dict[str, list[float]] = {}          # name -> [seconds, count], in the order first entered


@contextlib.contextmanager
def span(name: str) -> Iterator[None]:
    if not _FILE:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        total = _spans.setdefault(name, [0.0, 0])
        total[0] += time.perf_counter() - start
        total[1] += 1


def started() -> None:
    """The command begins: the time since the process started (Python, lab's imports, typer parsing the command
    line) becomes the first span. Linux's /proc; elsewhere nothing is recorded."""
    if not _FILE:
        return
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])    # field 22: the start, in clock ticks after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return
    _spans["start: Python, lab's imports, the command line"] = [age, 1]


def _write() -> None:
    if not _spans:
        return
    try:
        with open(_FILE, "a", encoding="utf-8") as f:
            for name, (seconds, count) in _spans.items():
                f.write(json.dumps({"span": name, "seconds": round(seconds, 6), "count": count}) + "\n")
    except OSError as e:         # a benchmark's file: never a reason for the command to fail
        print(f"LAB_TRACE: cannot write {_FILE}: {e.strerror}", file=sys.stderr)


if _FILE:
    atexit.register(_write)
