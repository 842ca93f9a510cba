"""The nginx image for rooms without a registry: pull, save, load."""

from __future__ import annotations

from pathlib import Path

from lab.app.selection import Lab, Progress, quiet


def image_pull(lab: Lab, progress: Progress = quiet) -> bool:
    from lab.engine import images, runtime

    return images.ensure(runtime.connect(), lab.settings.image, progress)


def image_save(lab: Lab, file: Path, progress: Progress = quiet) -> int:
    from lab.engine import images, runtime

    return images.save(runtime.connect(), lab.settings.image, file, progress)


def image_load(file: Path, progress: Progress = quiet) -> list[str]:
    from lab.engine import images, runtime

    return images.load(runtime.connect(), file, progress)
