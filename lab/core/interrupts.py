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

#: The signals that stop a command: Ctrl-C, and a terminal closed (SIGHUP) or a `kill` (SIGTERM), which undo
#: what the command made the same way (SIGKILL cannot be caught: what it leaves, the next run cleans).
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_like_ctrl_c() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does (main thread, at start-up); one ignored
    by whoever started lab (nohup) stays ignored."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _interrupt)


@contextlib.contextmanager
def held():
    """Hold a Ctrl-C until the block has finished, then raise it; an error of the
    block itself gives way to the interrupt (a script killed by the same Ctrl-C
    from the terminal fails, but what happened is that the user interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in STOPPING
                if signal.getsignal(sig) != signal.SIG_IGN}
    try:
        yield
    except Exception:
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt
