"""Stage 2: the lab's configuration, rendered from templates/ with Jinja.

The templates are the single source of configuration: nginx configs,
hello-world files and the compose file that lab/runtime.py reads. Rendering
uses StrictUndefined (a missing value is an error, never an empty string) and
writes each file atomically.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from lab import layout
from lab.errors import LabError
from lab.resources import templates_dir
from lab.settings import Settings

_FILES = {
    "server_ca_crt": layout.SERVER_CA_CRT,
    "client_ca_crt": layout.CLIENT_CA_CRT,
    "server_crt": layout.SERVER_CRT,
    "server_key": layout.SERVER_KEY,
    "hello": layout.HELLO_FILE,
    "crl": layout.CRL_FILE,
}
_DESCRIPTIONS = {
    "tls": "plain TLS: the client checks the server",
    "mtls": "mutual TLS: the server checks the client too",
}


@dataclass(frozen=True)
class RenderResult:
    lab_dir: Path
    files: tuple[Path, ...]
    compose_file: Path
    config_hash: str


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_text(template: str, **context) -> str:
    """Render one template; a missing value raises LabError naming it."""
    import jinja2

    try:
        return _environment().get_template(template).render(template=template, **context)
    except jinja2.UndefinedError as e:
        raise LabError(f"template {template} needs a value that was not given: {e.message}") from None


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def nginx_context(server: str, settings: Settings) -> dict:
    folder, port = layout.SERVERS[server]
    return {
        "port": port,
        "server_name": "localhost",
        "cert_dir": layout.CONTAINER_CERT_DIR,
        "container_crl_dir": layout.CONTAINER_CRL_DIR,
        "www_dir": layout.CONTAINER_WWW_DIR,
        "files": _FILES,
        "name": settings.name,
        "kind": "TLS" if server == "tls" else "mTLS",
        "description": _DESCRIPTIONS[server],
    }


def compose_context(settings: Settings, config_hash: str, lab_dir: Path) -> dict:
    bind = ipaddress.ip_address(settings.bind)
    return {
        "name": settings.name,
        "image": settings.image,
        "containers": {s: layout.container_name(settings.name, s) for s in layout.SERVERS},
        "network": layout.network_name(settings.name),
        "labels": {"lab": layout.LABEL_LAB, "server": layout.LABEL_SERVER, "config_hash": layout.LABEL_CONFIG_HASH,
                   "dir": layout.LABEL_DIR},
        "lab_dir": str(lab_dir.resolve()),
        "config_hash": config_hash,
        "publish_host": f"[{bind}]" if bind.version == 6 else str(bind),
        "ports": settings.ports(),
        "container_ports": {s: port for s, (_, port) in layout.SERVERS.items()},
        "nginx_conf": layout.CONTAINER_NGINX_CONF,
        "crl_dir": layout.CRL_DIR,
        "container_crl_dir": layout.CONTAINER_CRL_DIR,
        "cert_dir": layout.CONTAINER_CERT_DIR,
        "www_dir": layout.CONTAINER_WWW_DIR,
        "files": _FILES,
    }


def _mounted_certs(lab_dir: Path) -> list[Path]:
    certs = layout.certs_dir(lab_dir)
    return [certs / name for name in (layout.SERVER_CRT, layout.SERVER_KEY, layout.CLIENT_CA_CRT)]


def render_lab(lab_dir: Path, settings: Settings) -> RenderResult:
    """Render the lab's configuration, unless exactly these inputs were rendered into exactly these files before."""
    from lab import cache

    inputs = cache.digest(settings.to_dict(), str(lab_dir.resolve()),
                          files=[*sorted(templates_dir().iterdir()), *_mounted_certs(lab_dir)])
    entry = cache.get(lab_dir, "render")
    if entry and entry.get("inputs") == inputs:
        outputs = entry.get("outputs") or {}
        if outputs and all(cache.digest(files=[lab_dir / rel]) == h for rel, h in outputs.items()):
            files = tuple(lab_dir / rel for rel in outputs)
            return RenderResult(lab_dir, files, lab_dir / layout.COMPOSE_FILE, entry["config_hash"])
    result = _write_lab(lab_dir, settings)
    cache.put(lab_dir, "render", {
        "inputs": inputs, "config_hash": result.config_hash,
        "outputs": {str(p.relative_to(lab_dir)): cache.digest(files=[p]) for p in result.files},
    })
    return result


def _write_lab(lab_dir: Path, settings: Settings) -> RenderResult:
    """Write the nginx configs, hello-world files and compose file into lab_dir.

    The config hash covers everything a container depends on (rendered files,
    mounted certificates, image, ports, bind address); runtime compares it with
    the label on running containers to know whether to recreate them.
    """
    written: list[Path] = []
    digest = hashlib.sha256()
    for server, (folder, _) in layout.SERVERS.items():
        ctx = nginx_context(server, settings)
        for template, target in ((f"nginx-{server}.conf.j2", "nginx.conf"), ("hello-world.txt.j2", layout.HELLO_FILE)):
            text = render_text(template, **ctx)
            written.append(_write(lab_dir / folder / target, text))
            digest.update(f"{folder}/{target}\0{text}\0".encode())
    for path in _mounted_certs(lab_dir):
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    digest.update(repr(sorted(settings.to_dict().items())).encode())
    digest.update(str(lab_dir.resolve()).encode())  # a label on the containers
    config_hash = digest.hexdigest()[:16]
    compose = _write(lab_dir / layout.COMPOSE_FILE, render_text("docker-compose.yml.j2", **compose_context(settings, config_hash, lab_dir)))
    written.append(compose)
    return RenderResult(lab_dir, tuple(written), compose, config_hash)
