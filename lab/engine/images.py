"""The nginx image: present, pulled (with progress), saved to and loaded from
a tar file for rooms without a registry, through the engine seam
(lab/engine/seam.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lab.core import layout
from lab.core.errors import ImageUnavailable, LabError
from lab.core.files import replacing
from lab.engine.seam import Engine, EngineError

Progress = Callable[[str], None]


def present(engine: Engine, image: str) -> bool:
    return engine.has_image(image)


def pull_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) as the engine's pull wants them.

    docker-py's own parser: 'nginx:1.27.3@sha256:…' is ('nginx:1.27.3',
    'sha256:…'), which the engine pulls by digest; a registry port is not a tag."""
    from lab.engine.seam import parse_reference

    repo, tag = parse_reference(image)
    return repo, tag or "latest"


def ensure(engine: Engine, image: str, progress: Progress | None = None) -> bool:
    """Pull the image only when it is missing; True when it was pulled."""
    if present(engine, image):
        return False
    repo, tag = pull_reference(image)
    layers: dict[str, tuple[int, int]] = {}
    last = 0.0
    try:
        for event in engine.pull(repo, tag):
            if "error" in event:
                raise EngineError(str(event["error"]))
            detail = event.get("progressDetail") or {}
            if event.get("id") and detail.get("total"):
                layers[event["id"]] = (detail.get("current", 0), detail["total"])
            now = time.monotonic()
            if progress and now - last > 0.5:
                done, total = sum(c for c, _ in layers.values()), sum(t for _, t in layers.values())
                progress(f"pulling {image}: {done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"pulling {image}")
                last = now
        if not present(engine, image):
            raise EngineError(f"the pull ended without {image}")
        return True
    except EngineError as e:
        raise ImageUnavailable(f"image {image} is not on this machine and could not be pulled ({e.reason})",
                               hint=missing_hint(engine, image)) from None


def missing_hint(engine: Engine, image: str) -> str:
    """What to do when the image is absent and no registry has it: the offline image first, when it is here."""
    hint = (f"load a saved copy: lab image load FILE (made by `lab image save FILE` where the image is); "
            f"or build one from Debian packages: sudo scripts/build-nginx-image.sh, then lab up --image "
            f"{layout.OFFLINE_IMAGE}; or, with a registry, lab image pull")
    if image != layout.OFFLINE_IMAGE and present(engine, layout.OFFLINE_IMAGE):
        hint = f"{layout.OFFLINE_IMAGE} is on this machine: lab up --image {layout.OFFLINE_IMAGE}; or " + hint
    return hint


def registry_has(engine: Engine, image: str) -> None:
    """Ask the image's registry about it without pulling; raises ImageUnavailable when it cannot tell."""
    try:
        engine.registry_has(image)
    except (EngineError, OSError) as e:
        raise ImageUnavailable(getattr(e, "reason", str(e))) from None


def _tagged_name(image: str) -> str:
    """The name `docker save` writes into the tar: the reference as asked, 'latest' when no tag is given."""
    repo, tag = pull_reference(image)
    return image if tag.startswith("sha256:") else f"{repo}:{tag}"


def save(engine: Engine, image: str, path: Path, progress: Progress | None = None) -> int:
    """Stream the image into a tar file under the name asked for (docker save NAME:TAG); returns bytes written."""
    if not present(engine, image):
        raise ImageUnavailable(f"image {image} is not on this machine: nothing to save",
                               hint=f"lab image pull --image {image}, or scripts/build-nginx-image.sh")
    # `docker save` of an image object writes the image's *first* tag, whichever
    # that is; the laptop that loads the tar must find the very name lab uses.
    chunks = engine.save_image(image, _tagged_name(image))
    written = 0
    try:
        with replacing(path) as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
                if progress:
                    progress(f"saving {image}: {written / 1e6:.1f} MB")
    except OSError as e:
        raise LabError(f"cannot write {path} ({e.strerror})", hint="choose a writable path") from None
    return written


def load(engine: Engine, path: Path, progress: Progress | None = None) -> list[str]:
    """Load images from a tar file (docker load), streamed; returns their tags."""
    if not path.is_file():
        raise LabError(f"{path} is not a file", hint="give the tar file made by `lab image save FILE`")
    size = path.stat().st_size

    def chunks():
        sent = 0
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                sent += len(block)
                if progress:
                    progress(f"loading {path.name}: {sent / 1e6:.1f} / {size / 1e6:.1f} MB")
                yield block

    try:
        return engine.load_images(chunks())
    except EngineError as e:
        raise ImageUnavailable(f"could not load {path} ({e.reason})",
                               hint="was it made by `lab image save` or `docker save`?") from None
