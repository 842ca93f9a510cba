"""The running servers and the files they loaded: a server behind its files
(an edit, a new CRL) is brought up to them with nginx -t first and a reload
without downtime; a server that must run for a command is checked here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core import layout
from lab.core.errors import LabError
from lab.core.layout import Server

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lab.app.selection import Lab
    from lab.engine.loaded import Kind, LoadedState
    from lab.engine.seam import Engine


def note_loaded(lab_dir: Path, engine: Engine, lab_name: str, servers: Iterable[Server] = tuple(layout.SERVERS)) -> None:
    from lab.engine import loaded, runtime

    for server in servers:
        found = runtime.server_state(engine, lab_name, server)
        loaded.note(lab_dir, server, found[0] if found else None)


def loaded_states(lab_dir: Path, engine: Engine, lab_name: str) -> dict[Server, dict[Kind, LoadedState] | None]:
    """{server: {"config": "current"|"older", "crl": …} or None when it does not run}."""
    from lab.engine import loaded, runtime

    return {server: loaded.state(lab_dir, server, runtime.server_state(engine, lab_name, server))
            for server in layout.SERVERS}


@dataclass(frozen=True)
class Reloaded:
    server: str
    files: tuple[str, ...]     # what it had an older version of (relative to the lab directory)


def sync(lab: Lab, engine: Engine, servers: Iterable[Server] = tuple(layout.SERVERS), always: bool = False) -> list[Reloaded]:
    """Have each running server load what is on disk where it has not (or,
    with `always`, in any case): nginx -t inside the container first, so a
    broken edit raises ConfigError with nginx's own words and the old
    configuration keeps serving; then a reload without downtime."""
    from lab.core.concurrent import each
    from lab.engine import loaded, runtime

    done: dict[Server, Reloaded] = {}

    def one(server: Server) -> None:
        states = loaded.state(lab.dir, server, runtime.server_state(engine, lab.name, server))
        stale = loaded.older(states)
        if states is None or not (stale or always):
            return
        runtime.check_config(engine, lab.name, server)
        runtime.reload(engine, lab.name, server)
        done[server] = Reloaded(server, tuple(loaded.files(server)[k] for k in stale))

    # Both servers at once (each waits for its own old workers to finish); what each loaded is noted after,
    # one at a time (the notes share one cache file), also when the other server failed.
    order = list(servers)
    try:
        each(one, order)
    finally:
        if done:
            note_loaded(lab.dir, engine, lab.name, [s for s in order if s in done])
    return [done[s] for s in order if s in done]


def require_running(engine: Engine, lab: Lab, server: Server, why: str) -> None:
    """LabError unless the server's container runs (a paused or stopped one is named as such)."""
    from lab.engine import runtime

    found = runtime.server_state(engine, lab.name, server)
    if found is None or found[1] != "running":
        state = "not running" if found is None else found[1]
        raise LabError(f"the {server} server of lab {lab.name} is {state}: {why}",
                       hint=f"lab up{lab.selector} starts it (and keeps your edits)")


def not_running(lab_name: str) -> str:
    """Which of the lab's containers are not running, when the engine can tell."""
    from lab.engine import runtime

    try:
        servers = runtime.status(runtime.connect(), lab_name, None)
    except LabError:
        return ""
    if all(st.state == "missing" for st in servers):
        return f"lab {lab_name} is not running: `lab up` starts it"
    down_ = [f"{st.container} is {st.state}" for st in servers if st.state != "running"]
    return ("; ".join(down_) + ": `lab up` repairs it") if down_ else ""
