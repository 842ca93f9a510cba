"""One `lab up` / `lab down` / `lab render` at a time per lab name.

Two runs at once on the same lab would race to create the same containers
(or remove what the other just made). An exclusive, non-blocking flock on a
file named after the lab makes the second one stop at once with a clear
message. The kernel drops the lock when the holder exits, even if killed, so
a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from lab.errors import LabBusy


def lock_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"mtls-lab-{name}.lock"


@contextlib.contextmanager
def lab_lock(name: str):
    path = lock_path(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LabBusy(f"another lab command is changing lab {name!r} right now (pid {holder})",
                          hint="wait for it to finish, then run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
