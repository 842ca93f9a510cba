"""An engine in memory, beside the real one (lab/engine/seam.py): the same
protocol, so that up, rollback, reload and sync are tested in seconds with no
engine. It keeps containers, networks and images as data; nginx inside a
container is a list of worker pids that a SIGHUP replaces, and `nginx -t`
answers what `config_ok` says. Failures are injected by name: `fail["start"]
= "port is already allocated"` makes every start fail with the engine's words
(`fail_after["start"] = 1` lets the first one through).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from lab.core.net import host_port
from lab.engine.seam import ContainerInfo, EngineError, NetworkInfo

if TYPE_CHECKING:
    from lab.engine.compose import Service


@dataclass
class _Container:
    info: ContainerInfo
    workers: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


class FakeEngine:
    """The Engine protocol, in memory. `calls` records each changing call, in order."""

    def __init__(self, images: Iterable[str] = (), now: dt.datetime | None = None):
        self.images: set[str] = set(images)
        self.now = now
        self.boxes: dict[str, _Container] = {}
        self.nets: dict[str, NetworkInfo] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, str] = {}
        self.fail_after: dict[str, int] = {}
        self.config_ok: bool | str = True      # nginx -t: True, or the [emerg] line it prints
        self.pulled: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._pids = itertools.count(100)

    # ------------------------------------------------------------------ helpers for tests

    def _call(self, what: str, name: str) -> None:
        self.calls.append((what, name))
        if what in self.fail:
            left = self.fail_after.get(what, 0)
            if left > 0:
                self.fail_after[what] = left - 1
            else:
                raise EngineError(self.fail[what])

    def _box(self, name: str) -> _Container:
        box = self.boxes.get(name)
        if box is None:
            raise EngineError(f"No such container: {name}")
        return box

    def set_state(self, name: str, status: Any) -> None:
        """What `docker pause`/`docker stop` would do, for a test."""
        box = self._box(name)
        box.info = replace(box.info, status=status)

    # ------------------------------------------------------------------ the engine

    def version(self) -> str:
        return "fake"

    def clock(self) -> dt.datetime | None:
        return self.now

    # ------------------------------------------------------------------ containers

    @staticmethod
    def _matches(labels: Mapping[str, str], wanted: Mapping[str, str | None]) -> bool:
        return all(k in labels and (v is None or labels[k] == v) for k, v in wanted.items())

    def containers(self, labels: Mapping[str, str | None]) -> list[ContainerInfo]:
        return [b.info for b in self.boxes.values() if self._matches(b.info.labels, labels)]

    def container(self, name: str) -> ContainerInfo | None:
        box = self.boxes.get(name)
        return box.info if box is not None else None

    def create(self, svc: Service, network: str) -> ContainerInfo:
        self._call("create", svc.container_name)
        if svc.container_name in self.boxes:
            raise EngineError(f'Conflict. The container name "/{svc.container_name}" is already in use')
        if network not in self.nets:
            raise EngineError(f"network {network} not found")
        if svc.image not in self.images:
            raise EngineError(f"No such image: {svc.image}")
        host, port = svc.published
        info = ContainerInfo(f"c{next(self._ids)}", svc.container_name, "created", dict(svc.labels),
                             host_port(host, port), svc.image)
        self.boxes[svc.container_name] = _Container(info)
        return info

    def start(self, name: str) -> None:
        self._call("start", name)
        box = self._box(name)
        box.info = replace(box.info, status="running", started_at=dt.datetime.now(dt.UTC).isoformat())
        box.workers = [str(next(self._pids)) for _ in range(2)]

    def stop(self, name: str, timeout: float) -> None:
        self._call("stop", name)
        if name in self.boxes:
            self.set_state(name, "exited")

    def remove(self, name: str) -> None:
        self._call("remove", name)
        self.boxes.pop(name, None)

    def exec(self, name: str, argv: list[str]) -> tuple[int, str]:
        self._call("exec", name)
        self._box(name)
        if self.config_ok is True:
            return 0, ""
        return 1, str(self.config_ok)

    def signal(self, name: str, signal: str) -> None:
        self._call("signal", name)
        box = self._box(name)
        if signal == "SIGHUP":
            box.workers = [str(next(self._pids)) for _ in box.workers]

    def processes(self, name: str) -> list[tuple[str, str]]:
        box = self.boxes.get(name)
        if box is None:
            return []
        return [("1", "nginx: master process"), *((pid, "nginx: worker process") for pid in box.workers)]

    def logs(self, name: str, tail: int | Literal["all"] = "all", follow: bool = False) -> Iterator[str]:
        lines = self._box(name).log
        return iter(lines if tail == "all" else lines[-int(tail):] if tail else [])

    # ------------------------------------------------------------------ networks

    def networks(self, labels: Mapping[str, str | None]) -> list[NetworkInfo]:
        return [n for n in self.nets.values() if self._matches(n.labels, labels)]

    def network(self, name: str) -> NetworkInfo | None:
        return self.nets.get(name)

    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo:
        self._call("create_network", name)
        made = NetworkInfo(f"n{next(self._ids)}", name, dict(labels))
        self.nets[name] = made
        return made

    def remove_network(self, name: str) -> None:
        self._call("remove_network", name)
        self.nets.pop(name, None)

    # ------------------------------------------------------------------ images

    @staticmethod
    def _full(image: str) -> str:
        """'nginx' is 'nginx:latest', as an engine reads it."""
        return image if "@" in image or ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"

    def has_image(self, image: str) -> bool:
        return image in self.images or self._full(image) in self.images

    def image_tags(self, image: str) -> list[str] | None:
        return [image] if image in self.images else None

    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        self._call("pull", f"{repository}:{tag}")
        self.pulled.append((repository, tag))
        self.images.add(f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}")
        return iter([{"status": "done"}])

    def registry_has(self, image: str) -> None:
        raise EngineError("no registry here")

    def save_image(self, image: str, name: str) -> Iterator[bytes]:
        return iter([f"image {name}".encode()])

    def load_images(self, chunks: Iterable[bytes]) -> list[str]:
        data = b"".join(chunks).decode(errors="replace")
        tag = data.removeprefix("image ")
        self.images.add(tag)
        return [tag]
