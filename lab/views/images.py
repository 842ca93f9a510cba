"""What the image commands show."""

from __future__ import annotations

from pathlib import Path

from lab.views.console import ok


def image_pulled(image: str, pulled: bool) -> None:
    ok(f"{image} {'pulled' if pulled else 'was already here'}")


def image_saved(image: str, file: Path, size: int) -> None:
    ok(f"saved {image} to {file} ({size / 1e6:.1f} MB); on each laptop: lab image load {file}")


def image_loaded(file: Path, tags: list[str]) -> None:
    ok(f"loaded {', '.join(tags) or 'an untagged image'} from {file}")
