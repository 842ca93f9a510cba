"""What `lab up` already checked or rendered, so a warm `lab up` does not do it
again: the lab directory's .lab-cache.json.

An entry is used only when a digest of everything it depends on is unchanged
(file contents, not times), so an edited, replaced or corrupted file always
means doing the work again. Losing the file only costs time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FILE = ".lab-cache.json"


def digest(*parts, files=()) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode() + b"\0")
    for path in files:
        path = Path(path)
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def get(lab_dir: Path, key: str) -> dict | None:
    try:
        entry = json.loads((lab_dir / FILE).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


def recall(lab_dir: Path, key: str, use):
    """use(entry) on the cached entry; None when there is none, or when it is not what `use`
    expects (a damaged cache file costs time, never a crash)."""
    entry = get(lab_dir, key)
    if entry is None:
        return None
    try:
        return use(entry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def put(lab_dir: Path, key: str, entry: dict) -> None:
    path = lab_dir / FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = entry
    from lab.core.errors import LabError
    from lab.core.files import write_atomically

    try:
        write_atomically(path, json.dumps(data, indent=1))
    except (OSError, LabError):
        pass  # a cache that cannot be written is only slower
