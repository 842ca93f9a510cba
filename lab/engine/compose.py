"""The rendered compose file, read back: what `lab up` creates.

templates/docker-compose.yml.j2 is the single source of the containers'
configuration; this module reads the subset of the compose format that
template uses (pyyaml) into typed data for lab/engine/runtime.py. It never talks to
Docker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.core import layout
from lab.core.errors import LabError
from lab.core.settings import parse_yaml


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class Service:
    key: str                     # "tls" / "mtls" (or "ocsp": the responder), from the server label
    container_name: str
    image: str
    labels: dict
    mounts: tuple[Mount, ...]
    ports: dict                  # {"8888/tcp": ("127.0.0.1", 8888)}
    network: str
    stop_signal: str
    command: tuple[str, ...] = ()
    # Hardening, as the compose file says it (see the template for why).
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    read_only: bool = False
    tmpfs: dict | None = None    # {"/run": "size=1m"}
    pids_limit: int | None = None
    mem_limit: str | None = None

    @property
    def published(self) -> tuple[str, int]:
        return next(iter(self.ports.values()))


@dataclass(frozen=True)
class LabSpec:
    name: str
    network: str
    network_labels: dict
    services: tuple[Service, ...]
    config_hash: str


def _parse_port(text: str) -> tuple[str, tuple[str, int]]:
    """'127.0.0.1:8888:8888' or '[::1]:8888:8888' -> ('8888/tcp', (host_ip, host_port))."""
    host, _, rest = text.rpartition(":")  # rest = container port
    host_ip, _, host_port = host.rpartition(":")
    return f"{int(rest)}/tcp", (host_ip.strip("[]"), int(host_port))


def _tmpfs(entries) -> dict:
    """['/run:size=1m,mode=755'] -> {'/run': 'size=1m,mode=755'}."""
    out = {}
    for entry in entries or []:
        path, _, options = str(entry).partition(":")
        out[path] = options
    return out


def read(path: Path) -> LabSpec:
    """Read the subset of the compose format that templates/docker-compose.yml.j2 uses."""
    try:
        doc = parse_yaml(path.read_text())
        base = path.parent.resolve()
        networks = doc["networks"]
        net_key, net = next(iter(networks.items()))
        services = []
        for svc in doc["services"].values():
            mounts = []
            for vol in svc.get("volumes", []):
                src, target, *mode = vol.split(":")
                mounts.append(Mount((base / src).resolve(), target, mode == ["ro"]))
            ports = dict(_parse_port(p) for p in svc.get("ports") or [])     # the OCSP responder publishes none
            labels = {k: str(v) for k, v in svc["labels"].items()}
            services.append(Service(
                key=labels[layout.LABEL_SERVER], container_name=svc["container_name"], image=svc["image"],
                labels=labels, mounts=tuple(mounts), ports=ports,
                network=networks[svc["networks"][0]]["name"], stop_signal=svc.get("stop_signal", "SIGTERM"),
                command=tuple(svc.get("command") or ()),
                cap_drop=tuple(svc.get("cap_drop", ())), cap_add=tuple(svc.get("cap_add", ())),
                security_opt=tuple(svc.get("security_opt", ())), read_only=bool(svc.get("read_only", False)),
                tmpfs=_tmpfs(svc.get("tmpfs")), pids_limit=svc.get("pids_limit"), mem_limit=svc.get("mem_limit"),
            ))
        first = services[0].labels
        return LabSpec(first[layout.LABEL_LAB], net["name"], {k: str(v) for k, v in net.get("labels", {}).items()},
                       tuple(services), first[layout.LABEL_CONFIG_HASH])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError, StopIteration, AttributeError) as e:
        raise LabError(f"{path} is not a compose file lab can read ({e.__class__.__name__}: {e})",
                       hint="run `lab up` to render it again from the templates") from None
