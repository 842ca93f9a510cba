"""Writing files the one safe way: whole or not at all, never through a symlink.

Every file lab writes goes through here: the text is written to a temporary
file made in the target's own folder (tempfile: a new random name, created
with O_EXCL, so nothing planted there is followed or truncated), given its
mode, then renamed over the target. A reader (nginx, a student's browser, a
second lab command) sees the old file or the new one, never half of one. A
target that is a symbolic link is refused: lab writes only inside what it
made.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lab.core.errors import LabError


def refuse_symlink(path: Path) -> None:
    """LabError when `path` is a symbolic link (lab never writes through one)."""
    if path.is_symlink():
        raise LabError(f"{path} is a symbolic link: lab does not write through links",
                       hint="remove the link (lab writes the file itself), or point --dir at the real folder")


def refuse_links(root: Path, path: Path) -> None:
    """No symbolic link between `root` (the lab directory, which may itself be reached through one) and
    `path`: a link planted at nginx-mtls/ or clients/NAME would send lab's writes anywhere."""
    try:
        rel = path.absolute().relative_to(root.absolute())
    except ValueError:
        raise LabError(f"{path} is outside {root}: lab writes only inside the lab directory") from None
    current = root.absolute()
    for part in rel.parts:
        current = current / part
        refuse_symlink(current)


@contextlib.contextmanager
def _staged(path: Path, mode: int) -> Iterator[tuple[int, Path]]:
    """A new file beside `path` (an open descriptor and its name), renamed over `path` when the block ends
    well and removed when it does not."""
    refuse_symlink(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        yield fd, Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def replacing(path: Path, mode: int = 0o644, root: Path | None = None) -> Iterator[BinaryIO]:
    """`with replacing(path) as f:` write f; on success it replaces `path` at once, on any error nothing
    changes. With `root`, no link may stand between it and `path`."""
    if root is not None:
        refuse_links(root, path)
    with _staged(path, mode) as (fd, _), os.fdopen(fd, "wb") as f:
        yield f


@contextlib.contextmanager
def staged_path(path: Path, mode: int = 0o600) -> Iterator[Path]:
    """For a program that writes by file name (openssl's key log): a new, empty file
    beside `path`, private from the start; renamed over `path` on success, removed otherwise."""
    with _staged(path, mode) as (fd, tmp):
        os.close(fd)
        yield tmp


def write_atomically(path: Path, data: str | bytes, mode: int = 0o644, root: Path | None = None) -> Path:
    """Write a whole file (text is UTF-8) by rename; returns the path. With `root`, no link on the way."""
    with replacing(path, mode, root) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def write_if_changed(path: Path, text: str, root: Path | None = None) -> bool:
    """Write a derived file (by rename, mode 0644, its folder 0700 if new) only when its text differs, so
    that a server tracking the file reloads only for a real change; True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomically(path, text, root=root)
    return True


def keep_copy(path: Path) -> Path:
    """Copy a hand-edited file to FILE.edited-TIMESTAMP beside it (never over another copy); returns the copy."""
    import datetime as dt
    import shutil

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup, n = path.with_name(f"{path.name}.edited-{stamp}"), 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.edited-{stamp}-{n}")
    shutil.copy2(path, backup)
    return backup


def write_private(path: Path, data: bytes) -> None:
    """A new file only its owner reads (a key, a bundle, a password), mode 0600 from the start; never over one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
