"""Ctrl-C at a safe moment.

Some steps must not be cut in two: an engine call that may still complete
inside the engine after Python gave up on it, an `openssl ca` that writes the
CA database after lab's undo has looked (even the fork of its script can be
caught half-way). Inside `held()` a Ctrl-C is noted, the step finishes, and
only then does KeyboardInterrupt arise, so the undo finds everything the step
made. (Only the main thread can set a signal handler: elsewhere this holds
nothing.)
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def held():
    """Hold a Ctrl-C until the block has finished, then raise it; an error of the
    block itself gives way to the interrupt (a script killed by the same Ctrl-C
    from the terminal fails, but what happened is that the user interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    except Exception:
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
