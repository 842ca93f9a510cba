"""Break-and-fix exercises: start (the mistake made for real), hint, check
(decided by real requests), solution, reset, status."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from lab.app.selection import Lab
from lab.app.servers import loaded_states, require_running, sync
from lab.core import layout
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from lab.engine.seam import Engine
    from lab.teach.exercise import Exercise, State
    from lab.teach.verify import Result, Scenario


@dataclass(frozen=True)
class ExerciseReport:
    exercise: Exercise
    results: list[Result] = field(default_factory=list)   # the exercise's checks, as real requests
    config_error: str = ""           # nginx refused the files on disk (then results are not run)
    restored: list[str] = field(default_factory=list)
    kept: list[tuple[str, Path]] = field(default_factory=list)   # (file, where the student's edit of it was kept)
    not_loaded: list[str] = field(default_factory=list)   # status: files changed since the servers loaded them
    turned_off: list[str] = field(default_factory=list)   # the lesson's defences a fix turned off (named)
    still_edited: list[str] = field(default_factory=list) # reset: files that still differ from the lesson

    @property
    def fixed(self) -> bool:
        # Files the servers have not loaded (status reads, never loads) leave the question open: not fixed.
        return (not self.config_error and not self.not_loaded and not self.turned_off and bool(self.results)
                and all(r.passed for r in self.results))


def exercises(lab: Optional[Lab] = None, from_dir: Optional[Path] = None) -> list[Exercise]:
    """Every exercise, its texts with the lab's ports (the default ports when there is no lab yet)."""
    from lab.teach import exercise

    if lab is not None and (lab.dir / layout.SETTINGS_FILE).is_file():
        ports = exercise.values(lab.dir, lab.settings)
    else:
        ports = {"tls_port": str(layout.DEFAULT_TLS_PORT), "mtls_port": str(layout.DEFAULT_MTLS_PORT)}
    return [exercise.for_lab(ex, ports) for ex in exercise.load_all(from_dir)]


def _running_lab(lab: Lab) -> Engine:
    """An engine client, once both servers of the lab run (an exercise is decided by real requests)."""
    from lab.engine import runtime

    engine = runtime.connect()
    for server in layout.SERVERS:
        require_running(engine, lab, server, "an exercise is checked with real requests")
    return engine


def _running_exercise(lab: Lab) -> tuple[State, Exercise]:
    from lab.teach import exercise

    state = exercise.current(lab.dir)
    if state is None:
        raise UsageError("no exercise is running in this lab", hint=f"lab exercise list; lab exercise start ID{lab.selector}")
    source = Path(state.source)
    ex = exercise.load_file(source) if source.is_file() else exercise.find(state.id)
    return state, exercise.for_lab(ex, exercise.values(lab.dir, lab.settings))


def _judge_exercise(lab: Lab, ex: Exercise, engine: Engine, load: bool = True) -> ExerciseReport:
    """Load what is on disk (nginx -t first), then the exercise's checks as real requests.
    Without `load`, the servers are asked as they run (the files they have not loaded are named)."""
    from dataclasses import replace

    from lab.core.errors import ConfigError
    from lab.engine import loaded
    from lab.teach import verify as checks

    not_loaded: list[str] = []
    if load:
        try:
            sync(lab, engine)
        except ConfigError as e:
            return ExerciseReport(ex, config_error="\n".join(filter(None, [str(e), e.details])))
    else:
        for server, states in loaded_states(lab.dir, engine, lab.name).items():
            not_loaded += [loaded.files(server)[kind] for kind in loaded.older(states)]
    available = checks.scenarios(lab.dir)
    results = []
    for check in ex.checks:
        found = [sc for sc in available if sc.name == check.scenario]
        if not found:
            continue      # e.g. `revoked` before anyone is revoked
        sc = found[0]
        if check.cert:
            sc = replace(sc, client_cert=(check.cert, check.key or check.cert))
        if check.text is not None:     # any refusal of this kind, in the words a student's own fix chose
            sc = replace(sc, expect=replace(sc.expect, text=check.text))
        if check.refused is not None:  # this certificate refused by the server, with this verdict
            sc = replace(sc, expect=checks.Expect("http", 400, "The SSL certificate error",
                                                  client_verify=f"FAILED:{check.refused}"),
                         shows=sc.shows + f" (here: refused, {check.refused})")
        if check.tls:
            sc = replace(sc, max_tls=check.tls, shows=sc.shows + f" (a client that offers TLS {check.tls} at most)")
        try:
            results.append(replace(checks.run_one(sc, lab.dir, lab.settings), scenario=check.label))
        except (OSError, ValueError) as e:   # a client certificate the exercise made is gone or broken
            raise LabError(f"check {check.label} cannot load its client certificate ({e})",
                           hint="lab exercise reset, then start the exercise again") from None
    return ExerciseReport(ex, results, not_loaded=not_loaded, turned_off=_lesson_broken(lab, ex, available, results))


def _lesson_broken(lab: Lab, ex: Exercise, available: list[Scenario], results: list[Result]) -> list[str]:
    """A check is the symptom fixed and the lesson intact: the refusals every `lab verify` makes (those the
    exercise does not check itself), as real requests, and the defences no request shows (lab/teach/defences.py)."""
    from lab.teach import defences
    from lab.teach import verify as checks

    checked = {c.scenario for c in ex.checks}
    lesson = [sc for sc in available if sc.name in (*defences.REFUSALS, "revoked") and sc.name not in checked]
    broken = []
    for sc in lesson:
        result = checks.run_one(sc, lab.dir, lab.settings)
        if not result.passed:
            what = defences.REFUSAL_DEFENCES.get(sc.name, sc.name)
            broken.append(f"{what}: {result.scenario} now gets {result.observed}")
    broken += [d.name for d in defences.turned_off(lab.dir)]
    return broken


def exercise_start(lab: Lab, exercise_id: str, from_dir: Optional[Path] = None, force: bool = False) -> ExerciseReport:
    """Make the exercise's mistake for real in the lab directory (every file it may
    write saved first), load it, and show the checks failing. On a lab that is not the
    lesson (a file edited by hand, a defence turned off) it refuses, naming what differs,
    unless `force`: the exercise would start on top of someone's earlier fix."""
    from lab.config import render as rendering
    from lab.core.locking import lab_lock
    from lab.teach import defences, exercise

    ex = exercise.for_lab(exercise.find(exercise_id, from_dir), exercise.values(lab.dir, lab.settings))
    if ex.needs == "ocsp" and not lab.settings.ocsp:
        raise UsageError(f"exercise {ex.id} is about the OCSP responder, and this lab's mTLS server asks none",
                         hint=f"lab up --revocation ocsp{lab.selector}, then lab exercise start {ex.id}{lab.selector}")
    engine = _running_lab(lab)
    with lab_lock(lab.name):
        running = exercise.current(lab.dir)
        if running is not None:
            raise UsageError(f"exercise {running.id!r} is running in this lab",
                             hint=f"lab exercise check{lab.selector}, or lab exercise reset{lab.selector} to end it")
        if not force:
            differ = [f"edited by hand: {e.file}" for e in rendering.edits(lab.dir, lab.settings)]
            differ += [f"turned off: {d.name}" for d in defences.turned_off(lab.dir)]
            if differ:
                raise UsageError(f"this lab is not the lesson, and {ex.id} would start on top of it: "
                                 + "; ".join(differ),
                                 hint=f"lab reset{lab.selector} puts the lesson back (your edits kept beside); or "
                                      f"lab exercise start {ex.id} --force{lab.selector}")
        state = exercise.snapshot(lab.dir, ex)
        try:
            exercise.apply(lab.dir, ex.breaks, exercise.values(lab.dir, lab.settings))
        except BaseException:
            exercise.restore(lab.dir, state, keep_edits=False, record=False)   # all of it lab's own writing
            raise
        exercise.note_written(lab.dir, state)
        report = _judge_exercise(lab, ex, engine, load=ex.load)
    return report


def exercise_check(lab: Lab) -> ExerciseReport:
    from lab.core.locking import lab_lock
    from lab.teach import exercise

    state, ex = _running_exercise(lab)
    engine = _running_lab(lab)
    with lab_lock(lab.name):
        report = _judge_exercise(lab, ex, engine, load=ex.load)
        state.fixed = report.fixed
        state.checks += 1
        exercise.save_state(lab.dir, state)
    return report


def exercise_hint(lab: Lab) -> tuple[Exercise, int]:
    """The next of the exercise's graded hints (1-based; the last one again once all were given)."""
    from lab.core.locking import lab_lock
    from lab.teach import exercise

    state, ex = _running_exercise(lab)
    with lab_lock(lab.name):
        state.hints = min(state.hints + 1, max(1, len(ex.hints)))
        exercise.save_state(lab.dir, state)
    return ex, state.hints


def exercise_solution(lab: Lab, apply: bool = False) -> ExerciseReport:
    """The reference fix; with apply, carried out and checked."""
    from lab.core.locking import lab_lock
    from lab.teach import exercise

    state, ex = _running_exercise(lab)
    with lab_lock(lab.name):
        state.solution = True                # an instructor reading the results knows
        exercise.save_state(lab.dir, state)
    if not apply:
        return ExerciseReport(ex)
    engine = _running_lab(lab)
    with lab_lock(lab.name):
        exercise.apply(lab.dir, ex.solution, exercise.values(lab.dir, lab.settings))
        exercise.note_written(lab.dir, state)
        reloads = [step["reload"] for step in ex.solution if "reload" in step]
        if reloads:
            sync(lab, engine, reloads, always=True)
        report = _judge_exercise(lab, ex, engine, load=ex.load)
        state.fixed = report.fixed
        exercise.save_state(lab.dir, state)
    return report


def exercise_reset(lab: Lab) -> ExerciseReport:
    """Back to the lesson's state: every file the exercise wrote restored (a student's
    edit of it kept beside it), what it made removed, running servers reloaded."""
    from lab.config import render as rendering
    from lab.core.errors import DockerUnavailable
    from lab.core.locking import lab_lock
    from lab.engine import runtime
    from lab.teach import defences, exercise

    state, ex = _running_exercise(lab)
    with lab_lock(lab.name):
        restored, kept = exercise.restore(lab.dir, state)
        try:
            sync(lab, runtime.connect())
        except DockerUnavailable:
            pass
    # Honest about what is not the lesson: an edit the exercise never touched survives its reset.
    try:
        edited = [e.file for e in rendering.edits(lab.dir, lab.settings)]
    except LabError:
        edited = ["(a file that is not text)"]
    return ExerciseReport(ex, restored=restored, kept=kept, still_edited=edited,
                          turned_off=[d.name for d in defences.turned_off(lab.dir)])


def exercise_status(lab: Lab) -> Optional[ExerciseReport]:
    """The running exercise and whether the servers, as they run now, pass its checks; None when none
    runs. Read-only: no lock, no reload, nothing written (lab exercise check loads and records)."""
    from lab.teach import exercise

    if exercise.current(lab.dir) is None:
        return None
    _, ex = _running_exercise(lab)
    return _judge_exercise(lab, ex, _running_lab(lab), load=False)


def exercise_records(lab: Lab) -> dict:
    """For an instructor collecting results: the running exercise (started, hints used, checks run, solved)
    and every exercise ended in this lab."""
    from lab.teach import exercise

    state = exercise.current(lab.dir)
    return {"running": state.record() if state else None, "ended": exercise.history(lab.dir)}
