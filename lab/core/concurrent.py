"""Work done a few at a time: a class's folders (lab/pki/students.py), where the time goes to the file system
rather than the CPU, and the lab's containers (lab/engine/runtime.py), where it goes to the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Four at a time: creating a student's seven files and folder waits on the file system, and four at a time
# halve it (measured on ext4, 200 folders: 0.81 s one at a time, 0.43 s four at a time, 0.41 s eight).
AT_ONCE = 4


def each(work: Callable[[T], R], items: list[T], at_once: int = AT_ONCE) -> list[R]:
    """work(item) for every item, `at_once` at a time; the results in the items' order. On an error (the first, in
    the items' order) or a Ctrl-C, the work not started is cancelled and the work under way finishes before the
    error goes on, so whatever that work recorded is there for the caller's clean-up."""
    from concurrent.futures import ThreadPoolExecutor

    from lab.core import interrupts

    if len(items) <= 1 or at_once <= 1:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(min(at_once, len(items)))
    try:
        futures = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]      # a Ctrl-C here interrupts a wait, and is safe
    finally:
        # The workers are joined with a Ctrl-C held: on Python 3.11 one landing inside Thread.join() can mark a
        # worker that still runs as finished (bpo-45274's fix releases the thread's own lock), which left the
        # interpreter to end on a signal (exit -2) after a clean `lab up` undo. The wait is short: the work not
        # started is cancelled, what runs finishes.
        with interrupts.held():
            pool.shutdown(wait=True, cancel_futures=True)
