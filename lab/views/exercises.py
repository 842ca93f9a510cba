"""What the exercise commands show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import emit_json, escape, new_table, ok, out_console

if TYPE_CHECKING:
    from lab.app.exercises import ExerciseReport
    from lab.teach.exercise import Exercise


def exercises(found: list[Exercise]) -> None:
    from lab.views.console import projector

    out = out_console()
    if projector(out):        # a line each, the id whole (lab --wide exercise list: what each is checked with)
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for ex in found:
            grid.add_row(ex.id, escape(ex.title))
        out.print(f"{len(found)} exercises   (lab exercise start ID; lab --wide exercise list: their checks)",
                  markup=False)
        out.print(grid)
        return
    table = new_table(f"{len(found)} exercise(s)   (lab exercise start ID)",
                      [("id", {"no_wrap": True}), ("title", {}), ("checked with", {"overflow": "fold"})])
    for ex in found:
        table.add_row(ex.id, escape(ex.title), escape(", ".join(c.label for c in ex.checks)))
    out.print(table)


def _checks(report: ExerciseReport, causes: bool = True) -> None:
    out = out_console()
    if report.config_error:
        out.print("[bold red]✗[/] nginx refuses the configuration on disk (the server still serves its previous one):")
        for line in report.config_error.splitlines():
            out.print(f"    {line}", markup=False)
        return
    for r in report.results:
        mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
        out.print(f"{mark} {r.scenario}: {escape(r.observed)}")
        if r.cause and causes:
            out.print(f"    → {r.cause}", markup=False)


def exercise_started(report: ExerciseReport, selector: str) -> None:
    out = out_console()
    ex = report.exercise
    out.print(f"[bold]Exercise {ex.id}: {escape(ex.title)}[/]")
    out.print(ex.story, markup=False)
    out.print("\nAs a student meets it:", markup=False)
    _checks(report, causes=False)        # the symptom only: finding the cause is the exercise
    out.print(f"\nDiagnose it with lab verify, lab logs, curl and openssl; then: lab exercise check{selector}"
              f"   (stuck? lab exercise hint{selector})", markup=False)


def exercise_hint(ex: Exercise, number: int) -> None:
    hints = ex.hints or (ex.hint,)
    which = f" ({number} of {len(hints)})" if len(hints) > 1 else ""
    out_console().print(f"Hint for {ex.id}{which}: {hints[number - 1]}", markup=False)
    if number < len(hints):
        out_console().print("  (lab exercise hint again: a closer one)", markup=False)


def exercise_checked(report: ExerciseReport) -> None:
    out = out_console()
    _checks(report)
    if report.fixed:
        ok(f"fixed: {report.exercise.id}")
        out.print(report.exercise.explain, markup=False)
        return
    if report.turned_off:
        gone = bool(report.results) and all(r.passed for r in report.results) and not report.config_error
        out.print("[bold red]not fixed: " + ("the symptom is gone, but " if gone else "") + "you turned off[/]")
        for what in report.turned_off:
            out.print(f"    ✗ {escape(what)}")
        out.print("  a fix that weakens the lesson is no fix: undo that part, then lab exercise check", markup=False)
        if gone:
            return
    failing = [r.scenario for r in report.results if not r.passed] or ["the configuration"]
    out.print(f"[bold red]not fixed yet:[/] {', '.join(failing)} still fail{'s' if len(failing) == 1 else ''}")


def exercise_solution(report: ExerciseReport, applied: bool) -> None:
    from lab.teach.exercise import describe_steps

    out = out_console()
    ex = report.exercise
    if not applied:
        out.print(f"The reference fix of {ex.id}:", markup=False)
        for line in describe_steps(ex.solution):
            out.print(f"  {line}", markup=False)
        out.print(ex.explain, markup=False)
        return
    out.print(f"Applied the reference fix of {ex.id}.", markup=False)
    exercise_checked(report)


def exercise_reset(report: ExerciseReport) -> None:
    put_back = f" ({', '.join(report.restored)} put back)" if report.restored else ""
    if not report.still_edited and not report.turned_off:
        ok(f"exercise {report.exercise.id} ended: the lab is back to the lesson{put_back}")
    else:
        out = out_console()
        out.print(f"exercise {escape(report.exercise.id)} ended{escape(put_back)}, [bold red]but the lab is not the "
                  f"lesson[/]:")
        for rel in report.still_edited:
            out.print(f"    edited by hand: {rel} (lab diff shows it; lab reset {rel} puts the lesson back)",
                      markup=False)
        for what in report.turned_off:
            out.print(f"    ✗ turned off: {what}", markup=False)
    for rel, copy in report.kept:
        out_console().print(f"  your changes to {rel} are kept in {copy.name} beside it", markup=False)


def exercise_status(report: ExerciseReport | None, as_json: bool, records: dict | None = None) -> None:
    records = records or {"running": None, "ended": []}
    if as_json:
        running = records.get("running") or {}
        emit_json({"id": None, "ended": records["ended"]} if report is None else
                  {"id": report.exercise.id, "title": report.exercise.title, "fixed": report.fixed,
                   "not_loaded": report.not_loaded, **{k: v for k, v in running.items() if k != "id"},
                   "ended": records["ended"]})
        return
    if report is None:
        out_console().print("no exercise is running in this lab (lab exercise list)", markup=False)
        return
    state = "[green]fixed[/]" if report.fixed else "[bold red]not fixed yet[/]"
    out_console().print(f"exercise {report.exercise.id} is running: {state}")
    if report.not_loaded:
        out_console().print(f"  changed since the servers loaded them: {', '.join(report.not_loaded)} "
                            "(lab exercise check loads them, then checks)", markup=False)
