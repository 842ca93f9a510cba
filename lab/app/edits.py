"""Hands-on: the edits made by hand (diff), back to the lesson (reset), and
loading the files as they are (reload: nginx -t first, then no downtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from lab.app.selection import Lab
from lab.app.servers import Reloaded, require_running, sync
from lab.core import layout

if TYPE_CHECKING:
    from pathlib import Path

    from lab.config.render import Edit


def diff(lab: Lab, files: Optional[list[str]] = None) -> list[Edit]:
    """Each rendered file edited by hand, against what the templates render now."""
    from lab.config import render as rendering

    return rendering.edits(lab.dir, lab.settings, files)


@dataclass(frozen=True)
class ResetReport:
    restored: list[tuple[str, Path]]   # (file, where the edited copy was kept)
    reloaded: list[Reloaded]           # running servers now serving the lesson's files


def reset(lab: Lab, files: Optional[list[str]] = None) -> ResetReport:
    """Back to the lesson's state: each edited file (all when none is named)
    gets the lesson's version, the edited copy kept beside it; running servers
    load it (when the engine answers)."""
    from lab.config import render as rendering
    from lab.core.errors import DockerUnavailable
    from lab.core.locking import lab_lock
    from lab.engine import runtime

    with lab_lock(lab.name):
        restored = rendering.reset(lab.dir, lab.settings, files)
        try:
            engine = runtime.connect()
        except DockerUnavailable:
            return ResetReport(restored, [])
        return ResetReport(restored, sync(lab, engine))


def reload(lab: Lab, server: Optional[str] = None) -> list[Reloaded]:
    """`nginx -t` on the server's files as they are, then a reload without
    downtime (both servers when none is named). A refused configuration raises
    ConfigError and the server keeps serving what it served."""
    from lab.core.locking import lab_lock
    from lab.engine import runtime

    servers = layout.servers_named(server)
    engine = runtime.connect()
    for name in servers:
        require_running(engine, lab, name, "there is nothing to reload")
    with lab_lock(lab.name):
        return sync(lab, engine, servers, always=True)
