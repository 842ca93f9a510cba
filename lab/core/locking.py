"""One lab command at a time per lab name.

Two runs at once on the same lab would race to create the same containers
(or remove what the other just made, or issue from the CA database at once).
An exclusive flock on a file named after the lab serialises them: by default
the second one stops at once with a clear message; `lab client …` waits for
the lock (bounded, saying so). The kernel drops the lock when the holder
exits, even if killed, so a crash never leaves a stale lock behind.

The lock files live where only this user can write ($XDG_RUNTIME_DIR, else
~/.cache), never in a shared /tmp where another local user could create them
first and hold every lab hostage.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from lab.core.errors import LabBusy, LabError


def lock_dir() -> Path:
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime_dir) if runtime_dir and Path(runtime_dir).is_dir() else Path.home() / ".cache"
    return base / "mtls-lab" / "locks"


def _private_dir() -> Path:
    path = lock_dir()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as e:
        raise LabError(f"cannot make the lock folder {path} ({e.strerror})", hint="check HOME and its permissions") \
            from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LabError(f"the lock folder {path} is not this user's own private folder",
                       hint=f"remove it (it holds only lock files): rm -r {path}")
    return path


def lock_path(name: str) -> Path:
    return lock_dir() / f"{name}.lock"


@contextlib.contextmanager
def lab_lock(name: str, wait: float = 0.0, waiting: Optional[Callable[[str], None]] = None):
    """Hold the lab's lock; with `wait`, wait up to that many seconds for it, telling `waiting`."""
    path = _private_dir() / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                if time.monotonic() >= deadline:
                    waited = f" (waited {wait:g} s)" if wait else ""
                    raise LabBusy(f"another lab command is changing lab {name!r} right now (pid {holder}){waited}",
                                  hint="wait for it to finish, then run this again") from None
                if waiting:
                    waiting(f"waiting for another lab command on lab {name!r} (pid {holder})…")
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
