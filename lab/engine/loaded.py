"""What each running server has loaded: its nginx.conf and, for mTLS, the CRL.

nginx reads its configuration and ssl_crl when it starts and when it reloads,
not when the files change. So that what a server runs and what the lab
directory says never differ silently (a revocation reported but not enforced;
an edit on disk that is not what is served, or served and no longer on disk),
lab notes in .lab-cache.json the digests of what each container last loaded.
A different container or a different file means "older": `lab up` and
`lab reload` load the files, `lab status` and `lab doctor` say so. A lost
note only costs a reload. No Docker here: callers pass what the engine said.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from lab.core import cache, layout
from lab.core.layout import Server

# What a server loads, by kind, relative to the lab directory.
Kind = Literal["config", "crl", "names", "access"]
CONFIG: Kind = "config"
CRL: Kind = "crl"
NAMES: Kind = "names"     # the students' display names by serial, for the pages
ACCESS: Kind = "access"   # who may reach what (lab allow / lab deny)
#: Does the server run the file as it is on disk, or an older version of it?
LoadedState = Literal["current", "older"]


def files(server: Server) -> dict[Kind, str]:
    folder = layout.SERVERS[server][0]
    found: dict[Kind, str] = {CONFIG: f"{folder}/{layout.NGINX_CONF}"}
    if server == "mtls":
        found[CRL] = f"{layout.CRL_DIR}/{layout.CRL_FILE}"
        found[NAMES] = f"{layout.CRL_DIR}/{layout.NAMES_FILE}"
        found[ACCESS] = f"{layout.CRL_DIR}/access.map"
    return found


def _reads_crl(lab_dir: Path) -> bool:
    """Does the mTLS server's configuration name a CRL? (Not with --revocation ocsp: the responder answers.)"""
    try:
        text = (lab_dir / files("mtls")[CONFIG]).read_text(errors="replace")
    except OSError:
        return True
    return re.search(r"^\s*ssl_crl\s", text, re.MULTILINE) is not None


def _digests(lab_dir: Path, server: Server) -> dict[Kind, str]:
    # By the resolved path: the same lab named another way (mtls-lab, ./mtls-lab, /abs/mtls-lab) is the same file.
    found = files(server)
    if server == "mtls" and not _reads_crl(lab_dir):
        del found[CRL]         # nginx never loads it: no version of it is "older"
    return {kind: cache.digest(files=[lab_dir.resolve() / rel]) for kind, rel in found.items()}


def note(lab_dir: Path, server: Server, container_id: str | None) -> None:
    """Container `container_id` has just started or reloaded: it runs the files on disk."""
    if container_id:
        cache.put(lab_dir, f"loaded-{server}", {"container": container_id, "files": _digests(lab_dir, server)})


def state(lab_dir: Path, server: Server, found: tuple[str, str] | None) -> dict[Kind, LoadedState] | None:
    """Given the server's (container id, state): {"config": "current"|"older", "crl": …};
    None when it does not run (a server that starts reads the files as they are)."""
    if found is None or found[1] not in ("running", "paused", "restarting"):
        return None
    entry = cache.recall(lab_dir, f"loaded-{server}", lambda e: (e.get("container"), dict(e["files"])))
    container, had = entry or (None, {})
    had = {str(k): v for k, v in had.items()}
    same_container = container == found[0]   # paused, it still holds what it loaded
    return {kind: "current" if same_container and had.get(kind) == digest else "older"
            for kind, digest in _digests(lab_dir, server).items()}


def older(states: dict[Kind, LoadedState] | None) -> list[Kind]:
    """The kinds of file the server has an older version of."""
    return [kind for kind, s in (states or {}).items() if s == "older"]
