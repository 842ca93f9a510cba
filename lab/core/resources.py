"""Where the templates and scripts are: inside the installed package (a wheel
carries them as lab/templates and lab/scripts), or at the top of a source
checkout (editable install, tests)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent   # the lab package (this file is lab/core/resources.py)


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"lab is installed without its {name}/ folder (looked in {_PACKAGE} and its parent)")


def templates_dir() -> Path:
    return _find("templates")


def scripts_dir() -> Path:
    return _find("scripts")


def exercises_dir() -> Path:
    return _find("exercises")


def demo_file() -> Path:
    return _find("lesson") / "demo.yml"
