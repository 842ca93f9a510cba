"""Break-and-fix exercises: definitions (data files), their steps, and the
state of the one running in a lab.

An exercise is a file in exercises/ (inside the installed package) or in an
instructor's folder (--from DIR); exercises/README.md gives the format. Its
steps make a real change to the lab directory; before the first step, every
file that the exercise or its solution may write is saved into
.lab-exercise/, so `reset` puts the lab back exactly. Deciding whether an
exercise is fixed is lab/app/exercises.py's job: real requests, never reading files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lab.core import layout
from lab.core.errors import LabError, UsageError

STATE_DIR = ".lab-exercise"
STATE_FILE = "state.json"
WORK_DIR = "exercise"        # in the lab directory: files an exercise makes for the client side


class ExerciseError(LabError, exit_code=3):
    """An exercise file that cannot be used, or a step that failed."""


@dataclass(frozen=True)
class Check:
    scenario: str
    tls: str | None = None                  # "1.2": the client offers TLS 1.2 at most
    cert: str | None = None                 # another client certificate (and chain) …
    key: str | None = None                  # … and its key, relative to the lab directory
    text: str | None = None                 # words the answer must hold instead of the scenario's own
    refused: str | None = None              # instead: a refusal (400) with this verdict ("certificate revoked")

    @property
    def label(self) -> str:
        extra = [f"TLS {self.tls} at most" if self.tls else "", f"with {self.cert}" if self.cert else "",
                 f"refused: {self.refused}" if self.refused else ""]
        return self.scenario + "".join(f" ({x})" for x in extra if x)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    story: str
    hint: str                   # the first hint (the file's `hint`, or the first of its list)
    explain: str
    breaks: tuple = ()
    solution: tuple = ()
    checks: tuple[Check, ...] = ()
    source: str = ""
    hints: tuple[str, ...] = ()     # graded: each `lab exercise hint` gives the next, the last comes closest
    # Fixes that make the symptom go away by turning a defence off: the test suite applies each and expects
    # `lab exercise check` to refuse it, naming the defence.
    insecure_fixes: tuple[tuple[dict[str, Any], ...], ...] = ()
    # False: start and check ask the servers as they run, without loading the files first (the lesson is the
    # loading itself: a CRL changed on disk and not reloaded); the fix then includes a reload.
    load: bool = True
    needs: str = ""                 # "ocsp": only in a lab whose mTLS server asks an OCSP responder

    def writes(self) -> list[str]:
        """Every file the exercise or its solution may write (relative to the lab directory)."""
        found = []
        for step in (*self.breaks, *self.solution, *(s for fix in self.insecure_fixes for s in fix)):
            for key in ("edit", "write", "to"):
                if key in step:
                    found.append(step[key])
            found += list(step.get("creates", []))
            if step.get("renew-crl"):
                found += [f"{layout.CRL_DIR}/{layout.CRL_FILE}"] + [
                    f"{layout.CERTS_DIR}/{layout.CLIENT_CA_DB}/{n}" for n in ("crlnumber", "crlnumber.old")]
        return list(dict.fromkeys(found))

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "story": self.story, "source": self.source,
                "check": [c.label for c in self.checks], **({"needs": self.needs} if self.needs else {})}


_STEP_KINDS = ("edit", "write", "copy", "append", "run", "renew-crl", "reload")
# What each kind of step takes: required keys, and the optional ones.
_STEP_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "edit": ({"edit", "replace", "with"}, set()), "write": ({"write", "text"}, set()),
    "copy": ({"copy", "to"}, set()), "append": ({"append", "to"}, set()),
    "run": ({"run"}, {"cwd", "creates"}), "renew-crl": ({"renew-crl"}, set()), "reload": ({"reload"}, set()),
}
_PATH_KEYS = ("edit", "write", "copy", "append", "to", "cwd")
MAX_FILE_BYTES = 64 * 1024
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class _Bad(Exception):
    """One thing wrong in an exercise file: where (its key) and what."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")


def _text(value: object, where: str, limit: int = 4000) -> str:
    if not isinstance(value, str):
        raise _Bad(where, f"must be text, not {type(value).__name__}")
    if "\x00" in value or len(value) > limit:
        raise _Bad(where, f"must be text without NUL bytes, at most {limit} characters")
    return value


def _path(value: object, where: str) -> str:
    rel = _text(value, where, 255)
    if not rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise _Bad(where, f"must be a path inside the lab directory, not {rel!r}")
    return rel


def _step(step: object, where: str) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise _Bad(where, f"a step is a mapping with one of {', '.join(_STEP_KINDS)}")
    kinds = [k for k in _STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise _Bad(where, f"a step has exactly one of {', '.join(_STEP_KINDS)} (found {', '.join(kinds) or 'none'})")
    required, optional = _STEP_KEYS[kinds[0]]
    unknown = sorted(set(map(str, step)) - required - optional)
    missing = sorted(required - set(step))
    if unknown or missing:
        raise _Bad(where, f"a {kinds[0]} step takes {', '.join(sorted(required | optional))}"
                   + (f"; unknown: {', '.join(unknown)}" if unknown else "") + (f"; missing: {', '.join(missing)}" if missing else ""))
    for key in ("replace", "with", "text"):
        if key in step:
            _text(step[key], f"{where}.{key}", 16000)
    for key in _PATH_KEYS:
        if key in step:
            _path(step[key], f"{where}.{key}")
    if "run" in step:
        if not isinstance(step["run"], list) or not step["run"]:
            raise _Bad(f"{where}.run", "must be a list: the command and its arguments (no shell)")
        for i, arg in enumerate(step["run"]):
            _text(arg, f"{where}.run[{i}]", 1000)
    if "creates" in step:
        if not isinstance(step["creates"], list):
            raise _Bad(f"{where}.creates", "must be a list of paths")
        for i, rel in enumerate(step["creates"]):
            _path(rel, f"{where}.creates[{i}]")
    if "renew-crl" in step and step["renew-crl"] is not True:
        raise _Bad(f"{where}.renew-crl", "must be true")
    if "reload" in step and step["reload"] not in layout.SERVERS:
        raise _Bad(f"{where}.reload", f"must be a server: {', '.join(layout.SERVERS)}")
    return step


def _check(value: object, where: str) -> Check:
    from lab.teach.verify import ALL_NAMES

    if isinstance(value, str):
        value = {"scenario": value}
    if not isinstance(value, dict):
        raise _Bad(where, "a check is a scenario name, or a mapping with scenario (and tls, cert, key, text, refused)")
    unknown = sorted(set(map(str, value)) - {"scenario", "tls", "cert", "key", "text", "refused"})
    if unknown:
        raise _Bad(where, f"unknown {', '.join(unknown)}: a check takes scenario, tls, cert, key, text, refused")
    scenario = _text(value.get("scenario"), f"{where}.scenario", 40)
    if scenario not in ALL_NAMES:
        raise _Bad(f"{where}.scenario", f"{scenario!r} is not a lab verify scenario ({', '.join(ALL_NAMES)})")
    tls = value.get("tls")
    if tls is not None and str(tls) not in ("1.2", "1.3"):
        raise _Bad(f"{where}.tls", "must be 1.2 or 1.3")
    cert = _path(value["cert"], f"{where}.cert") if value.get("cert") is not None else None
    key = _path(value["key"], f"{where}.key") if value.get("key") is not None else None
    text = _text(value["text"], f"{where}.text", 200) if value.get("text") is not None else None
    refused = _text(value["refused"], f"{where}.refused", 200) if value.get("refused") is not None else None
    return Check(scenario, str(tls) if tls is not None else None, cert, key, text, refused)


def _steps(value: object, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise _Bad(where, "must be a list of steps")
    return tuple(_step(step, f"{where}[{i}]") for i, step in enumerate(value))


def _parse(text: str) -> object:
    """YAML without aliases (an alias can multiply a document a billion times: a file that hangs the list)."""
    import yaml

    from lab.core.settings import parse_yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader)):
        raise _Bad("(file)", "uses a YAML alias (*name): write each value out")
    return parse_yaml(text)


def load_file(path: Path) -> Exercise:
    """One exercise file, checked against the format (exercises/README.md): every error names the file and
    the key, in one line."""
    import yaml

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ExerciseError(f"exercise file {path} is larger than {MAX_FILE_BYTES // 1024} KiB: not an exercise")
        doc = _parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ExerciseError(f"exercise file {path} cannot be read ({e.__class__.__name__})",
                            hint="fix it (exercises/README.md gives the format), or remove it") from None
    except _Bad as e:
        raise ExerciseError(f"exercise file {path}: {e}", hint="exercises/README.md gives the format") from None
    try:
        if not isinstance(doc, dict):
            raise _Bad("(file)", "must be a mapping of id, title, story, break, hint, check, solution, explain")
        unknown = sorted(set(map(str, doc)) - {"id", "title", "story", "break", "hint", "check", "solution", "explain",
                                               "insecure_fixes", "load", "needs"})
        if unknown:
            raise _Bad(unknown[0], "is not a key of an exercise")
        ex_id = _text(doc.get("id"), "id", 40)
        if not _ID.fullmatch(ex_id):
            raise _Bad("id", f"{ex_id!r}: lower-case letters, digits and dashes")
        if not isinstance(doc.get("check"), list) or not doc["check"]:
            raise _Bad("check", "must be a list of checks")
        checks = tuple(_check(c, f"check[{i}]") for i, c in enumerate(doc["check"]))
        insecure = doc.get("insecure_fixes", [])
        if not isinstance(insecure, list):
            raise _Bad("insecure_fixes", "must be a list of fixes, each a list of steps")
        insecure_fixes = tuple(_steps(fix, f"insecure_fixes[{i}]") for i, fix in enumerate(insecure))
        load = doc.get("load", True)
        if not isinstance(load, bool):
            raise _Bad("load", "must be true or false")
        needs = doc.get("needs", "")
        if needs not in ("", "ocsp"):
            raise _Bad("needs", "is ocsp (a lab made with lab up --revocation ocsp), or absent")
        raw_hints = doc.get("hint", "")
        hints = tuple(_text(h, f"hint[{i}]").strip() for i, h in enumerate(raw_hints)) if isinstance(raw_hints, list) \
            else (_text(raw_hints, "hint").strip(),)
        return Exercise(ex_id, _text(doc.get("title"), "title", 200), _text(doc.get("story", ""), "story").strip(),
                        hints[0] if hints else "", _text(doc.get("explain", ""), "explain").strip(),
                        _steps(doc.get("break"), "break"), _steps(doc.get("solution"), "solution"), checks, str(path),
                        hints, insecure_fixes, load, needs)
    except _Bad as e:
        raise ExerciseError(f"exercise file {path}: {e}", hint="exercises/README.md gives the format") from None


def describe_steps(steps: tuple[dict[str, Any], ...]) -> list[str]:
    """Steps in words a student can follow by hand (the file's data is for lab)."""
    import shlex

    lines = []
    for step in steps:
        if "edit" in step:
            lines.append(f"in {step['edit']}, replace `{step['replace']}` with `{step['with']}`")
        elif "write" in step:
            lines.append(f"write {step['write']}")
        elif "copy" in step:
            lines.append(f"copy {step['copy']} to {step['to']}")
        elif "append" in step:
            lines.append(f"add {step['append']} at the end of {step['to']}")
        elif "run" in step:
            where = f"(in {step['cwd']}/) " if step.get("cwd") else ""
            lines.append(f"run {where}{shlex.join(str(a) for a in step['run'])}")
        elif step.get("renew-crl"):
            lines.append("make the CRL anew from the client CA's database (lab up does it; so does lab client revoke)")
        elif "reload" in step:
            lines.append(f"have the {step['reload']} server load its files: lab reload {step['reload']}")
    return lines


def load_all(from_dir: Path | None = None) -> list[Exercise]:
    """The exercises shipped with lab, then an instructor's own (--from DIR), in file-name order."""
    from lab.core.resources import exercises_dir

    folders = [exercises_dir()] + ([from_dir] if from_dir else [])
    if from_dir is not None and not from_dir.is_dir():
        raise UsageError(f"--from {from_dir}: not a folder of exercise files")
    found: dict[str, Exercise] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml")):
            ex = load_file(path)
            found[ex.id] = ex      # an instructor's file of the same id wins
    return list(found.values())


def find(exercise_id: str, from_dir: Path | None = None) -> Exercise:
    known = load_all(from_dir)
    for ex in known:
        if ex.id == exercise_id:
            return ex
    raise UsageError(f"no exercise {exercise_id!r}: known are {', '.join(e.id for e in known)}",
                     hint="lab exercise list")


# --------------------------------------------------------------------------- steps


def _inside(lab_dir: Path, rel: str) -> Path:
    """A path of the lab directory, with no link on the way (a link planted there sends writes anywhere)."""
    from lab.core.files import refuse_links

    path = lab_dir.resolve() / rel
    if not path.resolve().is_relative_to(lab_dir.resolve()) and not path.is_symlink():
        raise ExerciseError(f"exercise step names {rel}, outside the lab directory")
    refuse_links(lab_dir.resolve(), path)
    return path


def apply(lab_dir: Path, steps, values: dict) -> None:
    """Carry out steps in the lab directory; ExerciseError says which one failed and why."""
    from lab.core.files import write_atomically

    for step in steps:
        if "edit" in step:
            path = _inside(lab_dir, step["edit"])
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            old, new = fill(step["replace"], values), fill(step["with"], values)
            if old not in text:
                raise ExerciseError(f"{step['edit']} does not contain {old!r}: the lab is not in the state this "
                                    "step expects", hint="lab exercise reset, then lab reset, and start again")
            write_atomically(path, text.replace(old, new, 1), root=lab_dir)
        elif "write" in step:
            write_atomically(_inside(lab_dir, step["write"]), fill(step["text"], values), root=lab_dir)
        # copy and append write a new file by rename, never in place: nginx 1.27.2 and later cache a CRL by
        # inode and mtime, and a file changed in place within the same second is not read again.
        elif "copy" in step:
            source = _inside(lab_dir, step["copy"])
            write_atomically(_inside(lab_dir, step["to"]), source.read_bytes(), source.stat().st_mode & 0o777,
                             root=lab_dir)
        elif "append" in step:
            target = _inside(lab_dir, step["to"])
            write_atomically(target, target.read_bytes() + _inside(lab_dir, step["append"]).read_bytes(),
                             target.stat().st_mode & 0o777, root=lab_dir)
        elif "run" in step:
            cmd = [fill(str(a), values) for a in step["run"]]
            cwd = _inside(lab_dir, step.get("cwd", "."))
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ExerciseError(f"exercise step `{' '.join(cmd[:3])} …` failed (exit {proc.returncode})",
                                    details=(proc.stderr or proc.stdout).strip(),
                                    hint="the lines above are the command's own")
        elif step.get("renew-crl"):
            from lab.pki import ca

            ca.write_crl(lab_dir)


def values(lab_dir: Path, settings) -> dict:
    return {"lab": settings.name, "subject": layout.subject_base(settings.name), "days": str(settings.days),
            "tls_port": str(settings.tls_port), "mtls_port": str(settings.mtls_port),
            "instructor_serial": _instructor_serial(lab_dir)}


def _instructor_serial(lab_dir: Path) -> str:
    """The lab's instructor certificate's serial, as nginx's $ssl_client_serial writes it."""
    from lab.pki import ca

    try:
        return ca.der_serial(ca.load_cert(layout.demo_dir(lab_dir) / layout.INSTRUCTOR_CLIENT[0]).serial_number)
    except (OSError, ValueError):
        return "(no instructor certificate)"


def for_lab(ex: Exercise, values: dict) -> Exercise:
    """The texts a student reads, with this lab's values ({mtls_port}, …) in place. Only the known
    names are replaced: nginx snippets in a text keep their own braces."""
    return replace(ex, title=fill(ex.title, values), story=fill(ex.story, values), hint=fill(ex.hint, values),
                   explain=fill(ex.explain, values), hints=tuple(fill(h, values) for h in ex.hints))


def fill(text: str, values: dict[str, str]) -> str:
    """{name} replaced for the names lab knows ({lab}, {subject}, {tls_port}…); every other brace is the text's
    own (nginx's `location / {`, a shell's ${HOME}) and stays as it is."""
    if not values:
        return text
    return re.sub(r"\{(" + "|".join(map(re.escape, values)) + r")\}", lambda m: str(values[m.group(1)]), text)


# --------------------------------------------------------------------------- the running exercise


@dataclass
class State:
    id: str
    source: str
    saved: dict = field(default_factory=dict)      # file -> True (saved copy) / False (did not exist)
    fixed: bool = False
    written: dict = field(default_factory=dict)    # file -> sha-256 of what lab last wrote there (None: no file)
    hints: int = 0                                 # how many of the graded hints were given
    started: str = ""                              # ISO 8601, UTC
    checks: int = 0                                # how many times `lab exercise check` ran
    solution: bool = False                         # the reference fix was shown (or applied)

    def record(self, ended: str = "") -> dict:
        """What an instructor collects: this exercise, when, hints used, checks run, solved."""
        return {"id": self.id, "started": self.started, **({"ended": ended} if ended else {}),
                "hints_used": self.hints, "checks_run": self.checks, "solution_shown": self.solution,
                "solved": self.fixed}


#: Every exercise ended in this lab (by reset), oldest first: lab exercise status --json lists them.
HISTORY_FILE = ".lab-exercises.json"


def history(lab_dir: Path) -> list[dict]:
    try:
        found = json.loads((lab_dir / HISTORY_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def _remember(lab_dir: Path, state: State) -> None:
    import datetime as dt

    from lab.core.files import write_atomically

    ended = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_atomically(lab_dir / HISTORY_FILE, json.dumps([*history(lab_dir), state.record(ended)], indent=1) + "\n",
                     root=lab_dir)


def saved_copy(lab_dir: Path, rel: str) -> str | None:
    """The text of a file as it was when the running exercise started (saved for its reset), or None: no
    exercise runs, or it did not save that file."""
    try:
        return (_state_dir(lab_dir) / "saved" / rel).read_text(errors="replace")
    except OSError:
        return None


def _state_dir(lab_dir: Path) -> Path:
    return lab_dir / STATE_DIR


def current(lab_dir: Path) -> State | None:
    path = _state_dir(lab_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return State(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ExerciseError(f"{path} is damaged ({e.__class__.__name__})",
                            hint=f"restore the lab by hand (lab reset; lab up), then delete {_state_dir(lab_dir)}") \
            from None


def save_state(lab_dir: Path, state: State) -> None:
    from lab.core.files import write_atomically

    write_atomically(_state_dir(lab_dir) / STATE_FILE, json.dumps(state.__dict__, indent=1))


def snapshot(lab_dir: Path, ex: Exercise) -> State:
    """Save every file the exercise may write, before it writes any."""
    folder = _state_dir(lab_dir) / "saved"
    if _state_dir(lab_dir).exists():
        shutil.rmtree(_state_dir(lab_dir))
    folder.mkdir(parents=True)
    import datetime as dt

    state = State(ex.id, ex.source, started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    for rel in ex.writes():
        path = _inside(lab_dir, rel)
        state.saved[rel] = path.is_file()
        if path.is_file():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, folder / rel)
    state.saved[WORK_DIR + "/"] = (lab_dir / WORK_DIR).exists()
    (lab_dir / WORK_DIR).mkdir(exist_ok=True)
    save_state(lab_dir, state)
    return state


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def note_written(lab_dir: Path, state: State) -> None:
    """lab has just written the exercise's files (its mistake, or its solution): remember
    them, so that what a student changes afterwards is told apart, and kept."""
    state.written = {rel: _digest(lab_dir / rel) for rel in state.saved if rel != WORK_DIR + "/"}
    save_state(lab_dir, state)


#: Files an exercise may change that are never restored from its snapshot: the client CA's database is the
#: authority on who is revoked, and the CRL is always derived from it.
DERIVED = frozenset({f"{layout.CRL_DIR}/{layout.CRL_FILE}", *(f"{layout.CERTS_DIR}/{layout.CLIENT_CA_DB}/{n}" for n in (
    "index.txt", "index.txt.attr", "index.txt.old", "index.txt.attr.old", "crlnumber", "crlnumber.old", "serial",
    "serial.old"))})


def restore(lab_dir: Path, state: State, keep_edits: bool = True,
            record: bool = True) -> tuple[list[str], list[tuple[str, Path]]]:
    """Put back every saved file, remove what the exercise made. A file the student
    changed since lab last wrote it is first copied beside it (FILE.edited-TIMESTAMP),
    never lost. The exercise is recorded in the lab's history (`record`: a start that
    failed is not). Returns (the files restored or removed, (file, where its edit was kept))."""
    from lab.core.files import keep_copy, write_atomically

    folder = _state_dir(lab_dir) / "saved"
    changed, kept = [], []
    rebuild_crl = False
    for rel, existed in state.saved.items():
        if rel == WORK_DIR + "/":
            continue
        if rel in DERIVED:
            # Never put back: a CRL saved at `start` would re-admit a student revoked since, and its number
            # would be used twice. It is made anew from the CA database below (numbers only go up).
            rebuild_crl = True
            continue
        path = _inside(lab_dir, rel)
        original = (folder / rel).read_bytes() if existed else None
        now = path.read_bytes() if path.is_file() else None
        if now == original:
            continue
        if keep_edits and now is not None and _digest(path) != state.written.get(rel):
            kept.append((rel, keep_copy(path)))
        if existed:
            saved = folder / rel
            write_atomically(path, saved.read_bytes(), saved.stat().st_mode & 0o777, root=lab_dir)
        elif path.exists():
            path.unlink()
        changed.append(rel)
    if not state.saved.get(WORK_DIR + "/"):
        shutil.rmtree(lab_dir / WORK_DIR, ignore_errors=True)
    if rebuild_crl:
        from lab.pki import ca

        ca.write_crl(lab_dir)
        changed.append(f"{layout.CRL_DIR}/{layout.CRL_FILE}")
    if record:
        _remember(lab_dir, state)
    shutil.rmtree(_state_dir(lab_dir), ignore_errors=True)
    return changed, kept
