"""Stage 2: the lab's configuration, rendered from templates/ with Jinja.

The templates are the single source of configuration: nginx configs,
hello-world files and the compose file that lab/engine/compose.py reads back. Rendering
uses StrictUndefined (a missing value is an error, never an empty string) and
writes each file atomically.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from lab.core import layout
from lab.core.errors import LabError, UsageError
from lab.core.files import keep_copy, refuse_links, write_atomically
from lab.core.layout import Server
from lab.core.net import bracketed
from lab.core.resources import templates_dir
from lab.core.settings import Settings
from lab.core.templates import render_text

_FILES = {
    "server_ca_crt": layout.SERVER_CA_CRT,
    "client_ca_crt": layout.CLIENT_CA_CRT,
    "partner_ca_crt": layout.PARTNER_CA_CRT,
    "server_crt": layout.SERVER_CRT,
    "server_key": layout.SERVER_KEY,
    "hello": layout.HELLO_FILE,
    "crl": layout.CRL_FILE,
    "names": layout.NAMES_FILE,
    "identities": "identities.map",
    "access": "access.map",
    "help_txt": layout.HELP_TXT,
    "help_html": layout.HELP_HTML,
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
    kept: tuple[str, ...] = ()     # files edited by hand and kept (relative to the lab directory)


def nginx_context(server: Server, settings: Settings) -> dict:
    folder, port = layout.SERVERS[server]
    return {
        "port": port,
        "server_name": "localhost",
        "cert_dir": layout.CONTAINER_CERT_DIR,
        "container_crl_dir": layout.CONTAINER_CRL_DIR,
        "www_dir": layout.CONTAINER_CONF_DIR,
        "files": _FILES,
        "name": settings.name,
        "kind": "TLS" if server == "tls" else "mTLS",
        "description": _DESCRIPTIONS[server],
        "revocation": settings.revocation,
        "ocsp_url": f"http://{layout.container_name(settings.name, 'ocsp')}:{layout.OCSP_PORT}",
        "ocsp_cache": False,      # lab race renders it with a cache, to measure what a cache costs
    }


def compose_context(settings: Settings, config_hash: str, lab_dir: Path) -> dict:
    bind = ipaddress.ip_address(settings.bind)
    return {
        "name": settings.name,
        "image": settings.image,
        "containers": {s: layout.container_name(settings.name, s) for s in ("tls", "mtls", "ocsp")},
        "revocation": settings.revocation,
        "ocsp": _ocsp_service() if settings.ocsp else None,
        "network": layout.network_name(settings.name),
        "labels": {"lab": layout.LABEL_LAB, "server": layout.LABEL_SERVER, "config_hash": layout.LABEL_CONFIG_HASH,
                   "dir": layout.LABEL_DIR},
        "lab_dir": str(lab_dir.resolve()),
        "config_hash": config_hash,
        "publish_host": bracketed(str(bind)),
        "ports": settings.ports(),
        "container_ports": {s: port for s, (_, port) in layout.SERVERS.items()},
        "conf_dir": layout.CONTAINER_CONF_DIR,
        "command": ["nginx", "-c", f"{layout.CONTAINER_CONF_DIR}/{layout.NGINX_CONF}", "-g", "daemon off;"],
        "crl_dir": layout.CRL_DIR,
        "demo_dir": layout.DEMO_DIR,
        "container_crl_dir": layout.CONTAINER_CRL_DIR,
        "cert_dir": layout.CONTAINER_CERT_DIR,
        "files": _FILES,
    }


def network(lab_dir: Path, settings: Settings) -> tuple[str, dict[str, str]]:
    """The lab's network, name and labels, as the compose template writes them (its one source), before the
    certificates the rest of the file depends on exist: `lab up` makes the network while they are being made."""
    from lab.core.settings import parse_yaml

    doc = parse_yaml(render_text("docker-compose.yml.j2", **compose_context(settings, "", lab_dir)))
    net = next(iter(doc["networks"].values()))
    return str(net["name"]), {str(k): str(v) for k, v in (net.get("labels") or {}).items()}


def _ocsp_service() -> dict:
    """The responder's command: OpenSSL's `ocsp` server over lab's index of the client CA's certificates."""
    at = layout.CONTAINER_OCSP_DIR
    return {
        "dir": layout.OCSP_DIR, "container_dir": at, "port": layout.OCSP_PORT,
        "command": ["openssl", "ocsp", "-port", str(layout.OCSP_PORT), "-index", f"{at}/{layout.OCSP_INDEX}",
                    "-CA", f"{at}/{layout.OCSP_CA_FILE}", "-rsigner", f"{at}/{layout.OCSP_CRT}",
                    "-rkey", f"{at}/{layout.OCSP_KEY}", "-ignore_err"],
    }


def _mounted_certs(lab_dir: Path, settings: Settings | None = None) -> list[Path]:
    certs = layout.certs_dir(lab_dir)
    ocsp = lab_dir / layout.OCSP_DIR
    return [certs / name for name in (layout.SERVER_CRT, layout.SERVER_KEY, layout.CLIENT_CA_CRT, layout.SERVER_CA_CRT)] + [
        layout.demo_dir(lab_dir) / layout.PARTNER_CA_CRT] + (
        [ocsp / layout.OCSP_CRT, ocsp / layout.OCSP_KEY, ocsp / layout.OCSP_CA_FILE] if settings and settings.ocsp else [])


def lesson(lab_dir: Path, settings: Settings) -> tuple[dict[str, str], str]:
    """What the templates render now, file by file ({path relative to the lab
    directory: text}, the compose file last), and the config hash.

    The config hash covers everything a container is made from (the lesson's
    configuration, mounted certificates, image, ports, bind address); runtime
    compares it with the label on running containers to know whether to
    recreate them. Hand edits are not in it: they are loaded by `lab reload`.
    """
    texts: dict[str, str] = {}
    digest = hashlib.sha256()
    for server, (folder, _) in layout.SERVERS.items():
        ctx = nginx_context(server, settings)
        for template, target in ((f"nginx-{server}.conf.j2", layout.NGINX_CONF), ("hello-world.txt.j2", layout.HELLO_FILE)):
            text = render_text(template, **ctx)
            texts[f"{folder}/{target}"] = text
            digest.update(f"{folder}/{target}\0{text}\0".encode())
        if server == "mtls":
            # /help: the errors students meet, as text for curl and a page for browsers, from one source.
            for target, kind in ((layout.HELP_TXT, "txt"), (layout.HELP_HTML, "html")):
                text = render_text("student-help.j2", format=kind, lab=settings.name, mtls_port=settings.mtls_port,
                                   server_names=", ".join(x.split(":", 1)[1] for x in settings.all_sans()))
                texts[f"{folder}/{target}"] = text
                digest.update(f"{folder}/{target}\0{text}\0".encode())
    for path in _mounted_certs(lab_dir, settings):
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    digest.update(repr(sorted(settings.to_dict().items())).encode())
    digest.update(str(lab_dir.resolve()).encode())  # a label on the containers
    config_hash = digest.hexdigest()[:16]
    texts[layout.COMPOSE_FILE] = render_text("docker-compose.yml.j2", **compose_context(settings, config_hash, lab_dir))
    return texts, config_hash


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _written(lab_dir: Path) -> dict:
    """{relative path: digest} of what lab last wrote into each rendered file."""
    from lab.core import cache

    return cache.recall(lab_dir, "written", lambda e: dict(e["files"])) or {}


def is_edited(path: Path, last_written: str | None, lesson_text: str) -> bool:
    """Was this rendered file changed by hand? It differs from what lab last
    wrote and from what the lesson says now. With no record of what lab wrote
    (a lost cache), any difference from the lesson counts: an edit is never
    taken for lab's own file."""
    if not path.is_file():
        return False
    current = _sha(path.read_bytes())
    if current == _sha(lesson_text.encode()):
        return False
    return last_written is None or current != last_written


def render_lab(lab_dir: Path, settings: Settings) -> RenderResult:
    """Render the lab's configuration, unless exactly these inputs were rendered
    into exactly these files before. A file edited by hand is kept, never
    overwritten: RenderResult.kept names it."""
    from lab.core import cache

    inputs = cache.digest(settings.to_dict(), str(lab_dir.resolve()),
                          files=[*sorted(templates_dir().iterdir()), *_mounted_certs(lab_dir, settings)])
    def unchanged(entry) -> RenderResult | None:
        outputs = dict(entry["outputs"])
        if entry["inputs"] != inputs or not outputs or \
                not all(cache.digest(files=[lab_dir / rel]) == h for rel, h in outputs.items()):
            return None
        return RenderResult(lab_dir, tuple(lab_dir / rel for rel in outputs), lab_dir / layout.COMPOSE_FILE,
                            str(entry["config_hash"]), tuple(str(k) for k in entry.get("kept") or ()))

    done = cache.recall(lab_dir, "render", unchanged)
    if done is not None:
        return done
    result = _write_lab(lab_dir, settings)
    cache.put(lab_dir, "render", {
        "inputs": inputs, "config_hash": result.config_hash, "kept": list(result.kept),
        "outputs": {str(p.relative_to(lab_dir)): cache.digest(files=[p]) for p in result.files},
    })
    return result


def _write_lab(lab_dir: Path, settings: Settings) -> RenderResult:
    """Write the nginx configs, hello-world files and compose file into lab_dir, keeping hand edits."""
    from lab.core import cache

    texts, config_hash = lesson(lab_dir, settings)
    written = _written(lab_dir)
    kept = []
    for rel, text in texts.items():
        if is_edited(lab_dir / rel, written.get(rel), text):
            kept.append(rel)
            continue
        write_atomically(lab_dir / rel, text, root=lab_dir)
        written[rel] = _sha(text.encode())
    cache.put(lab_dir, "written", {"files": written})
    files = tuple(lab_dir / rel for rel in texts)
    return RenderResult(lab_dir, files, lab_dir / layout.COMPOSE_FILE, config_hash, tuple(kept))


# --------------------------------------------------------------------------- hand edits: diff and reset


@dataclass(frozen=True)
class Edit:
    file: str          # relative to the lab directory
    diff: str          # unified diff, the lesson's version first


def edits(lab_dir: Path, settings: Settings, only: list[str] | None = None) -> list[Edit]:
    """Each rendered file edited by hand, as a unified diff against what the templates render now."""
    import difflib

    texts, _ = lesson(lab_dir, settings)
    written = _written(lab_dir)
    chosen = _rendered_names(lab_dir, texts, only)
    out = []
    for rel in chosen:
        path = lab_dir / rel
        if not is_edited(path, written.get(rel), texts[rel]):
            continue
        raw = path.read_bytes()
        try:
            current = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LabError(f"{rel} is not UTF-8 text (byte {e.start}): it cannot be compared or served as written",
                           hint=f"lab reset {rel} puts the lesson's version back (your copy is kept beside it)") from None
        diff = "".join(difflib.unified_diff(texts[rel].splitlines(keepends=True), current.splitlines(keepends=True),
                                            f"lesson/{rel}", rel))
        out.append(Edit(rel, diff))
    return out


def _rendered_names(lab_dir: Path, texts: dict, only: list[str] | None) -> list[str]:
    """The rendered files named (as paths relative to the lab directory, or to where the
    command runs), all when none is named; a name lab did not render is an error, and so
    is a file of another folder (another lab's: its own --dir says which lab)."""
    if not only:
        return list(texts)
    chosen = []
    for name in only:
        typed = Path(name)
        if typed.is_absolute() or typed.exists():
            try:
                rel = typed.resolve().relative_to(lab_dir.resolve()).as_posix()
            except ValueError:
                raise UsageError(f"{name} is not in this lab's folder {lab_dir}/",
                                 hint="name the lab it belongs to with --dir (lab diff and lab reset work on "
                                      "one lab at a time)") from None
        else:
            rel = os.path.normpath(typed.as_posix())
            if rel.startswith(".."):
                raise UsageError(f"{name} is outside this lab's folder {lab_dir}/ (and not found there)",
                                 hint="name a rendered file as lab diff lists it, e.g. nginx-mtls/nginx.conf")
        match = next((r for r in texts if rel == r or rel.endswith("/" + r)), None)
        if match is None:
            raise UsageError(f"lab did not render {name}: lab diff and lab reset work on {', '.join(texts)}",
                             hint="a file you made yourself is yours to keep or delete")
        chosen.append(match)
    return chosen


def reset(lab_dir: Path, settings: Settings, only: list[str] | None = None) -> list[tuple[str, Path]]:
    """Put the lesson's version back into each edited file (all when none is
    named); the edited copy is kept beside it as FILE.edited-TIMESTAMP.
    Returns (file, where the edited copy went)."""
    from lab.core import cache

    texts, _ = lesson(lab_dir, settings)
    written = _written(lab_dir)
    done = []
    for rel in _rendered_names(lab_dir, texts, only):
        path = lab_dir / rel
        if not is_edited(path, written.get(rel), texts[rel]):
            continue
        refuse_links(lab_dir, path)     # before the copy too: it is written beside the file
        backup = keep_copy(path)
        write_atomically(path, texts[rel], root=lab_dir)
        written[rel] = _sha(texts[rel].encode())
        done.append((rel, backup))
    cache.put(lab_dir, "written", {"files": written})
    return done
