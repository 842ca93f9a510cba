"""The nginx image: present, pulled (with progress), saved to and loaded from
a tar file for rooms without a registry. Docker is reached only through the
client that lab/runtime.py connects."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from lab.core import layout
from lab.core.errors import ImageUnavailable, LabError

Progress = Callable[[str], None]


def _short(e: BaseException) -> str:
    from lab.engine.runtime import short_error

    return short_error(e)


def present(client, image: str) -> bool:
    import docker

    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def pull_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) as the engine's pull wants them.

    docker-py's own parser: 'nginx:1.27.3@sha256:…' is ('nginx:1.27.3',
    'sha256:…'), which the engine pulls by digest; a registry port is not a tag."""
    from docker.utils import parse_repository_tag

    repo, tag = parse_repository_tag(image)
    return repo, tag or "latest"


def ensure(client, image: str, progress: Progress | None = None) -> bool:
    """Pull the image only when it is missing; True when it was pulled."""
    import docker

    if present(client, image):
        return False
    repo, tag = pull_reference(image)
    layers: dict[str, tuple[int, int]] = {}
    last = 0.0
    try:
        for event in client.api.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise docker.errors.APIError(event["error"])
            detail = event.get("progressDetail") or {}
            if event.get("id") and detail.get("total"):
                layers[event["id"]] = (detail.get("current", 0), detail["total"])
            now = time.monotonic()
            if progress and now - last > 0.5:
                done, total = sum(c for c, _ in layers.values()), sum(t for _, t in layers.values())
                progress(f"pulling {image}: {done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"pulling {image}")
                last = now
        client.images.get(image)
        return True
    except docker.errors.DockerException as e:
        raise ImageUnavailable(f"image {image} is not on this machine and could not be pulled ({_short(e)})",
                               hint=missing_hint(client, image)) from None


def missing_hint(client, image: str) -> str:
    """What to do when the image is absent and no registry has it: the offline image first, when it is here."""
    hint = (f"load a saved copy: lab image load FILE (made by `lab image save FILE` where the image is); "
            f"or build one from Debian packages: sudo scripts/build-nginx-image.sh, then lab up --image "
            f"{layout.OFFLINE_IMAGE}; or, with a registry, lab image pull")
    if image != layout.OFFLINE_IMAGE and present(client, layout.OFFLINE_IMAGE):
        hint = f"{layout.OFFLINE_IMAGE} is on this machine: lab up --image {layout.OFFLINE_IMAGE}; or " + hint
    return hint


def registry_has(client, image: str) -> None:
    """Ask the image's registry about it without pulling; raises ImageUnavailable when it cannot tell."""
    import docker

    try:
        client.api.inspect_distribution(image)
    except (docker.errors.DockerException, OSError) as e:
        raise ImageUnavailable(_short(e)) from None


def _tagged_name(image: str) -> str:
    """The name `docker save` writes into the tar: the reference as asked, 'latest' when no tag is given."""
    repo, tag = pull_reference(image)
    return image if tag.startswith("sha256:") else f"{repo}:{tag}"


def save(client, image: str, path: Path, progress: Progress | None = None) -> int:
    """Stream the image into a tar file under the name asked for (docker save NAME:TAG); returns bytes written."""
    import docker

    try:
        img = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageUnavailable(f"image {image} is not on this machine: nothing to save",
                               hint=f"lab image pull --image {image}, or scripts/build-nginx-image.sh") from None
    # Image.save(named=True) writes the image's *first* tag, whichever that
    # is; the laptop that loads the tar must find the very name lab uses.
    name = _tagged_name(image)
    chunks = img.save(named=name) if name in img.tags else client.api.get_image(image)
    tmp = path.with_name(f".{path.name}.part")
    written = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
                if progress:
                    progress(f"saving {image}: {written / 1e6:.1f} MB")
        tmp.replace(path)
    except OSError as e:
        raise LabError(f"cannot write {path} ({e.strerror})", hint="choose a writable path") from None
    finally:
        tmp.unlink(missing_ok=True)
    return written


def load(client, path: Path, progress: Progress | None = None) -> list[str]:
    """Load images from a tar file (docker load), streamed; returns their tags."""
    import docker

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
        images = client.images.load(chunks())
    except docker.errors.DockerException as e:
        raise ImageUnavailable(f"could not load {path} ({_short(e)})",
                               hint="was it made by `lab image save` or `docker save`?") from None
    return sorted(t for img in images for t in img.tags)
