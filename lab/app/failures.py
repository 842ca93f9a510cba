"""Failures no use case foresaw, told apart from bugs: the engine or the file
system failing mid-command is an expected failure too, and becomes a LabError
for the command line's one boundary. Anything else keeps its traceback."""

from __future__ import annotations

from lab.core.errors import LabError


def expected(e: Exception) -> LabError | None:
    """The LabError an unforeseen exception stands for, or None (a bug)."""
    from lab.engine.seam import engine_failure

    found = engine_failure(e)
    if found is not None:
        return found
    if isinstance(e, OSError):
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return LabError(f"{e.strerror or e}{where}", hint="check the path and its permissions")
    return None
