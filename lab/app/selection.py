"""Which lab a command is about: its directory and its settings, resolved once
(flag > LAB_* variable > the directory's lab.yml > defaults), and how to name it
again in a hint. Every use case starts from a Lab."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from lab.core import layout
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from lab.core.settings import Settings
    from lab.engine.seam import Engine


Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Lab:
    """A lab directory and its settings, as the command line selected them."""

    dir: Path
    settings: Settings
    selector: str = ""      # " --dir D" / " --name N": how to name this lab again in a hint

    @property
    def name(self) -> str:
        return self.settings.name


def lab_dir_for(directory: Optional[Path], name: Optional[str]) -> Path:
    """--dir, else ./NAME, else ./mtls-lab; never a file."""
    from lab.core.settings import validate_name

    if name is not None:
        validate_name(name)
    path = directory if directory is not None else Path(name or layout.DEFAULT_NAME)
    if path.exists() and not path.is_dir():
        raise UsageError(f"lab directory {path} is a file: choose another with --dir")
    return path


def _selector(directory: Optional[Path], lab_dir: Path, name: Optional[str]) -> str:
    if directory is not None:
        return f" --dir {lab_dir}"
    return f" --name {name}" if name else ""


def select(directory: Optional[Path] = None, name: Optional[str] = None, *, require: bool = False,
           publishing: bool = False, port_offset: Optional[int] = None, **given: Any) -> Lab:
    """The lab a command is about: its directory and its settings, resolved
    once: flag > LAB_* variable (typer reads both) > the directory's lab.yml >
    defaults. `require`: the lab must have been made (`lab up` / `lab render`).
    `publishing`: the command writes the server certificate's names (up,
    render, a demo that may start a lab), so room mode looks this machine up."""
    from lab.core import settings

    lab_dir = lab_dir_for(directory, name)
    if require and not (lab_dir / layout.SETTINGS_FILE).is_file():
        raise LabError(f"no lab in {lab_dir} (no {layout.SETTINGS_FILE})",
                       hint="run `lab up` first, or point --dir at the lab")
    given = {k: v for k, v in given.items()}
    for key in ("sans", "public_names"):
        if given.get(key) is not None:
            given[key] = tuple(given[key])
    s = settings.resolve(lab_dir, {"name": name, **given}, port_offset=port_offset, publishing=publishing)
    return Lab(lab_dir, s, _selector(directory, lab_dir, name))


def name_for(lab_dir: Path, name: Optional[str], engine: Engine) -> str:
    """--name, else the directory's saved name, else the lab whose containers
    carry this directory's label (the directory may be gone), else the default."""
    from lab.core import settings
    from lab.engine import runtime

    if name:
        return name
    if lab_dir.is_dir():
        saved = settings.load_saved(lab_dir).get("name")
        if saved:
            return saved
    return runtime.lab_for_dir(engine, lab_dir) or layout.DEFAULT_NAME


def refuse_elsewhere(engine: Engine, lab_name: str, lab_dir: Path, command: str) -> None:
    """The containers of `lab_name` must have been made from `lab_dir`: a lab of that name running from
    another folder that still exists is not this command's (a mistyped --dir, a lab.yml copied from
    elsewhere), and the command says where it runs instead. A lab whose folder is gone is anyone's."""
    from lab.engine import runtime

    here = str(lab_dir.resolve())
    for c in runtime.lab_containers(engine, lab_name):
        there = c.labels.get(layout.LABEL_DIR)
        if there and there != here and Path(there).exists():
            raise UsageError(f"lab {lab_name!r} runs from {there}, not from {lab_dir}: not touching it",
                             hint=f"lab {command} --dir {there}")


def student_host(s: Settings) -> str:
    """How students write the instructor's machine in a URL: the first that leads here from the room's
    network (an address first: lab/core/settings.Settings.student_urls), else localhost."""
    urls = s.student_urls()
    return urls[0].split("/")[2].rsplit(":", 1)[0] if urls else "localhost"


@dataclass(frozen=True)
class Expiry:
    days: int
    file: str

    @property
    def soon(self) -> bool:
        return self.days < layout.EXPIRY_WARN_DAYS


def first_expiry(lab_dir: Path) -> Optional[Expiry]:
    from lab.pki import certs

    found = certs.expiries(lab_dir) if lab_dir.is_dir() else {}
    if not found:
        return None
    file, when = min(found.items(), key=lambda kv: kv[1])
    return Expiry((when - now()).days, file)
