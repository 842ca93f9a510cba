"""The seam between lab and a container engine: what lab asks of one, typed.

`Engine` is the small protocol lab's runtime, images and preflight use: list
by label, create, start, stop, remove, exec, signal, logs, networks, images.
`DockerEngine` puts the Docker SDK for Python behind it (the one place
docker-py is called); lab/engine/fake.py keeps an engine in memory beside it,
so that up, rollback, reload and sync are tested in seconds with no engine.
The docker SDK's exceptions stop here: a failed call is an EngineError (a
RuntimeFailure, exit 6) carrying the engine's own last line; a name that is
not there is None, never an exception.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lab.core.errors import DockerUnavailable, LabError, RuntimeFailure
from lab.core.net import host_port

if TYPE_CHECKING:
    from lab.engine.compose import Service

#: What the engine says of a container (docker's states).
ContainerState = Literal["created", "running", "paused", "restarting", "removing", "exited", "dead"]

DOCKER_HINT = (
    "start the Docker engine (this repository: sudo scripts/setup-docker.sh; "
    "elsewhere: systemctl start docker or Docker Desktop) and check DOCKER_HOST"
)


class EngineError(RuntimeFailure):
    """The engine refused or failed a call; `reason` is its own last line."""

    def __init__(self, reason: str, *, hint: str = DOCKER_HINT, details: str = ""):
        super().__init__(f"the Docker engine failed: {reason}", hint=hint, details=details)
        self.reason = reason


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: ContainerState
    labels: Mapping[str, str]
    published: str = ""            # "127.0.0.1:8888" ("[::1]:8888" for IPv6), "" when none
    image: str = ""                # as the container was created from it
    started_at: str = ""           # ISO time the engine gave, "" when never started
    exit_code: int | None = None


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """What lab needs of a container engine. Labels select: {key: value}, or {key: None} for any value."""

    def version(self) -> str: ...
    def clock(self) -> dt.datetime | None: ...

    def containers(self, labels: Mapping[str, str | None]) -> list[ContainerInfo]: ...
    def container(self, name: str) -> ContainerInfo | None: ...
    def create(self, svc: Service, network: str) -> ContainerInfo: ...
    def start(self, name: str) -> None: ...
    def stop(self, name: str, timeout: float) -> None: ...
    def remove(self, name: str) -> None: ...
    def exec(self, name: str, argv: list[str]) -> tuple[int, str]: ...
    def signal(self, name: str, signal: str) -> None: ...
    def processes(self, name: str) -> list[tuple[str, str]]: ...
    def logs(self, name: str, tail: int | Literal["all"] = "all", follow: bool = False) -> Iterator[str]: ...

    def networks(self, labels: Mapping[str, str | None]) -> list[NetworkInfo]: ...
    def network(self, name: str) -> NetworkInfo | None: ...
    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo: ...
    def remove_network(self, name: str) -> None: ...

    def has_image(self, image: str) -> bool: ...
    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]: ...
    def registry_has(self, image: str) -> None: ...
    def image_tags(self, image: str) -> list[str] | None: ...
    def save_image(self, image: str, name: str) -> Iterator[bytes]: ...
    def load_images(self, chunks: Iterable[bytes]) -> list[str]: ...


def short_error(e: BaseException) -> str:
    """An engine's (or any) exception as its last line, at most 300 characters."""
    text = str(getattr(e, "explanation", None) or e).strip().splitlines()
    return text[-1][:300] if text else e.__class__.__name__


def engine_failure(e: BaseException) -> LabError | None:
    """The LabError for an exception of the docker SDK that escaped a call (None for any other)."""
    import sys

    docker_errors = sys.modules.get("docker.errors")
    if docker_errors is not None and isinstance(e, docker_errors.DockerException):
        return EngineError(short_error(e))
    return None


@contextlib.contextmanager
def _calls() -> Iterator[None]:
    """Around every docker-py call: its exceptions become EngineError."""
    import docker
    import requests

    try:
        yield
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise EngineError(short_error(e)) from None


def _label_filter(labels: Mapping[str, str | None]) -> list[str]:
    return [key if value is None else f"{key}={value}" for key, value in labels.items()]


def _published(attrs: Mapping[str, Any]) -> str:
    ports = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for bindings in ports.values():
        for b in bindings or []:
            return host_port(b.get("HostIp") or "0.0.0.0", b.get("HostPort"))
    return ""


def _info(c: Any) -> ContainerInfo:
    state = c.attrs.get("State") or {}
    return ContainerInfo(c.id, c.name, c.status, dict(c.labels or {}), _published(c.attrs),
                         (c.attrs.get("Config") or {}).get("Image", ""), state.get("StartedAt", "") or "",
                         state.get("ExitCode"))


class DockerEngine:
    """The Docker SDK for Python behind the Engine protocol."""

    def __init__(self, client: Any):
        self.client = client

    @classmethod
    def connect(cls, timeout: int = 30) -> DockerEngine:
        """A client that has answered a ping, or DockerUnavailable."""
        import docker

        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except Exception as e:  # DockerException, requests' connection errors, bad DOCKER_HOST schemes
            raise DockerUnavailable(f"cannot reach the Docker engine ({short_error(e)})", hint=DOCKER_HINT) from None
        return cls(client)

    def _get(self, name: str) -> Any | None:
        import docker

        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    # ------------------------------------------------------------------ the engine

    def version(self) -> str:
        with _calls():
            return str(self.client.version().get("Version", "?"))

    def clock(self) -> dt.datetime | None:
        with _calls():
            text = self.client.info().get("SystemTime")
        return parse_time(text) if text else None

    # ------------------------------------------------------------------ containers

    def containers(self, labels: Mapping[str, str | None]) -> list[ContainerInfo]:
        with _calls():
            return [_info(c) for c in self.client.containers.list(all=True, filters={"label": _label_filter(labels)})]

    def container(self, name: str) -> ContainerInfo | None:
        with _calls():
            found = self._get(name)
            return _info(found) if found is not None else None

    def create(self, svc: Service, network: str) -> ContainerInfo:
        import docker

        mounts = [docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only) for m in svc.mounts]
        with _calls():
            made = self.client.containers.create(
                svc.image, name=svc.container_name, labels=svc.labels, mounts=mounts, ports=svc.ports,
                network=network, stop_signal=svc.stop_signal, detach=True, command=list(svc.command) or None,
                cap_drop=list(svc.cap_drop) or None, cap_add=list(svc.cap_add) or None,
                security_opt=list(svc.security_opt) or None, read_only=svc.read_only, tmpfs=svc.tmpfs or None,
                pids_limit=svc.pids_limit, mem_limit=svc.mem_limit,
            )
            return _info(made)      # the SDK has inspected it already

    def start(self, name: str) -> None:
        import docker

        with _calls():
            try:
                self.client.api.start(name)      # one request: no inspection first
            except docker.errors.NotFound:
                raise EngineError(f"no container named {name}") from None

    def stop(self, name: str, timeout: float) -> None:
        with _calls():
            found = self._get(name)
            if found is not None:
                found.stop(timeout=int(timeout))

    def remove(self, name: str) -> None:
        import docker

        with _calls():
            found = self._get(name)
            if found is not None:
                try:
                    found.remove(force=True)
                except docker.errors.NotFound:
                    pass

    def exec(self, name: str, argv: list[str]) -> tuple[int, str]:
        with _calls():
            found = self._get(name)
            if found is None:
                raise EngineError(f"no container named {name}")
            result = found.exec_run(argv)
            return int(result.exit_code or 0), result.output.decode(errors="replace")

    def signal(self, name: str, signal: str) -> None:
        with _calls():
            found = self._get(name)
            if found is None:
                raise EngineError(f"no container named {name}")
            found.kill(signal=signal)

    def processes(self, name: str) -> list[tuple[str, str]]:
        """(pid, command line) of each process in the container."""
        with _calls():
            found = self._get(name)
            if found is None:
                return []
            top = found.top()
        titles = top.get("Titles") or []
        pid_i, cmd_i = titles.index("PID"), len(titles) - 1
        return [(str(p[pid_i]), str(p[cmd_i])) for p in top.get("Processes") or []]

    def logs(self, name: str, tail: int | Literal["all"] = "all", follow: bool = False) -> Iterator[str]:
        with _calls():
            found = self._get(name)
            if found is None:
                raise EngineError(f"no container named {name}")
            if not follow:
                text = found.logs(tail=tail, timestamps=False).decode(errors="replace")
                return iter(text.splitlines())
            stream = found.logs(stream=True, follow=True, tail=tail)
        return _lines(stream)

    # ------------------------------------------------------------------ networks

    def networks(self, labels: Mapping[str, str | None]) -> list[NetworkInfo]:
        with _calls():
            return [NetworkInfo(n.id, n.name, dict(n.attrs.get("Labels") or {}))
                    for n in self.client.networks.list(filters={"label": _label_filter(labels)})]

    def network(self, name: str) -> NetworkInfo | None:
        with _calls():
            found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        return NetworkInfo(found[0].id, found[0].name, dict(found[0].attrs.get("Labels") or {})) if found else None

    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo:
        with _calls():
            made = self.client.networks.create(name, driver="bridge", labels=dict(labels))
            return NetworkInfo(made.id, name, dict(labels))

    def remove_network(self, name: str) -> None:
        import docker

        with _calls():
            for n in self.client.networks.list(names=[name]):
                if n.name == name:
                    try:
                        n.remove()
                    except docker.errors.NotFound:
                        pass

    # ------------------------------------------------------------------ images

    def has_image(self, image: str) -> bool:
        return self.image_tags(image) is not None

    def image_tags(self, image: str) -> list[str] | None:
        import docker

        with _calls():
            try:
                return list(self.client.images.get(image).tags)
            except docker.errors.ImageNotFound:
                return None

    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        with _calls():
            events = self.client.api.pull(repository, tag=tag, stream=True, decode=True)
        return _converted(events)

    def registry_has(self, image: str) -> None:
        with _calls():
            self.client.api.inspect_distribution(image)

    def save_image(self, image: str, name: str) -> Iterator[bytes]:
        """The image as a tar stream, under `name` when the image has that tag (docker save NAME:TAG)."""
        with _calls():
            img = self.client.images.get(image)
            chunks = img.save(named=name) if name in img.tags else self.client.api.get_image(image)
        return _converted(chunks)

    def load_images(self, chunks: Iterable[bytes]) -> list[str]:
        with _calls():
            return sorted(t for img in self.client.images.load(chunks) for t in img.tags)


def _converted(items: Iterable[Any]) -> Iterator[Any]:
    """A stream from the engine whose failures, mid-stream, are EngineErrors too."""
    with _calls():
        yield from items


def _lines(stream: Iterable[bytes]) -> Iterator[str]:
    buffer = b""
    with _calls():
        for chunk in stream:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode(errors="replace")


def parse_time(text: str) -> dt.datetime | None:
    """An engine's timestamp (RFC 3339, nanoseconds, Z or an offset) as an aware UTC datetime; None when unreadable."""
    try:
        core = text.strip().rstrip("Z")
        for sign in ("+", "-"):
            if sign in core[19:]:
                core = core[: 19 + core[19:].index(sign)]
        return dt.datetime.fromisoformat(core[:26]).replace(tzinfo=dt.UTC)
    except (ValueError, TypeError):
        return None


def parse_reference(image: str) -> tuple[str, str | None]:
    """(repository, tag or digest) of an image reference, by docker-py's own parser."""
    from docker.utils import parse_repository_tag

    repo, tag = parse_repository_tag(image)
    return repo, tag
