"""The command line: the typer app and its commands (options in lab/cli/options.py,
the one error boundary in lab/cli/boundary.py).

Each command selects its lab (lab/app/selection.py), calls one use case of
lab/app/ and hands what it returns to a view of lab/views/. LabError becomes
a one-line message and a documented exit code here, and nowhere else. The
use cases and views import Docker, Jinja and cryptography only inside their
functions, so that `lab --help` does not pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lab import player
from lab.app import demo, edits, exercises, images, lesson, lifecycle, selection, students
from lab.cli import access as access_commands
from lab.cli import gallery as gallery_commands
from lab.cli import room as room_commands
from lab.cli.boundary import ROLLS_BACK, STOPS, Done, handles_errors
from lab.cli.options import (
    AsOpt,
    BindOpt,
    DaysOpt,
    DirOpt,
    DiscardOpt,
    FilesArg,
    FromOpt,
    HostOpt,
    ImageOpt,
    JsonOpt,
    MtlsPortOpt,
    NameOpt,
    PortOffsetOpt,
    PublicNameOpt,
    RegenerateOpt,
    RevocationOpt,
    SanOpt,
    TlsPortOpt,
)
from lab.core import trace
from lab.core.errors import EXIT_CODES, UsageError
from lab.views import checks as checks_view
from lab.views import console
from lab.views import demo as demo_view
from lab.views import edits as edits_view
from lab.views import exercises as exercises_view
from lab.views import handshake as handshake_view
from lab.views import images as images_view
from lab.views import lifecycle as lifecycle_view
from lab.views import students as students_view

EXIT_CODE_HELP = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."

app = typer.Typer(
    help="Stand up a mutual-TLS (mTLS) lab: two CAs, a TLS and an mTLS nginx server in Docker; "
    "verify it; tear it down.",
    epilog=EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"lab {version('mtls-lab')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    width: Annotated[Optional[int], typer.Option(
        "--width", help="Lay the output out for this many columns (100 or fewer: the projector's layout, where "
                        "no port or verdict is cut) [default: the terminal's, or COLUMNS].", show_default=False)] = None,
    wide: Annotated[bool, typer.Option("--wide", help="The full tables, whatever the terminal's width (the "
                                       "projector's layout is for 100 columns or fewer).")] = False,
) -> None:
    if wide:
        import os

        os.environ["LAB_WIDE"] = "1"        # lab/views/console.py: no projector layout, tables at full width
    if width is not None:
        if not 40 <= width <= 1000:
            raise typer.BadParameter("from 40 to 1000 columns", param_hint="--width")
        import os

        os.environ["COLUMNS"] = str(width)     # every console reads it (lab/views/console.py)


# --------------------------------------------------------------------------- up, render, down


@app.command("up")
@handles_errors(on_interrupt=ROLLS_BACK)
def up_cmd(
    directory: DirOpt = None, name: NameOpt = None, tls_port: TlsPortOpt = None, mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None, bind: BindOpt = None, image: ImageOpt = None, san: SanOpt = None,
    public_name: PublicNameOpt = None, days: DaysOpt = None, revocation: RevocationOpt = None,
    regenerate: RegenerateOpt = False, discard_students: DiscardOpt = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for both servers to answer TLS.")] = 30.0,
) -> None:
    """Make certificates, render the configs and start both nginx servers; return when both answer TLS."""

    with trace.span("up: the lab selected (options, lab.yml)"):
        lab = selection.select(directory, name, publishing=True, port_offset=port_offset, tls_port=tls_port,
                               mtls_port=mtls_port, bind=bind, image=image, sans=san, days=days,
                               public_names=public_name, revocation=revocation)
    with console.progress() as say:
        report = lifecycle.up(lab, regenerate=regenerate, timeout=timeout, progress=say,
                            discard_students=discard_students)
    with Done(f"lab {lab.name} is up (lab status{lab.selector} shows it)"), trace.span("up: the report printed"):
        lifecycle_view.up(report, lesson.try_next(lab))


@app.command("render")
@handles_errors(on_interrupt=ROLLS_BACK)
def render_cmd(
    directory: DirOpt = None, name: NameOpt = None, tls_port: TlsPortOpt = None, mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None, bind: BindOpt = None, image: ImageOpt = None, san: SanOpt = None,
    public_name: PublicNameOpt = None, days: DaysOpt = None, revocation: RevocationOpt = None,
    regenerate: RegenerateOpt = False, discard_students: DiscardOpt = False,
) -> None:
    """Write the lab directory (certificates, nginx configs, compose file) without starting anything."""

    lab = selection.select(directory, name, publishing=True, port_offset=port_offset, tls_port=tls_port,
                         mtls_port=mtls_port, bind=bind, image=image, sans=san, days=days,
                         public_names=public_name, revocation=revocation)
    with console.progress() as say:
        report = lifecycle.render(lab, regenerate=regenerate, progress=say, discard_students=discard_students)
    with Done(f"lab {lab.name} is rendered in {lab.dir}/"):
        lifecycle_view.render(report)


@app.command("down")
@handles_errors
def down_cmd(
    directory: DirOpt = None, name: NameOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the lab directory (certificates included).")] = False,
) -> None:
    """Remove the lab's containers and network (found by label, nothing else); idempotent."""

    lifecycle_view.down(lifecycle.down(directory, name, purge=purge))


# --------------------------------------------------------------------------- status, logs, doctor


@app.command("status")
@handles_errors
def status_cmd(
    directory: DirOpt = None, name: NameOpt = None,
    all_labs: Annotated[bool, typer.Option("--all", help="Every lab on this Docker engine, found by label.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the lab's servers: container, state, TLS health, address, image, uptime; certificate expiry."""

    if all_labs:
        rows = lifecycle.all_labs()
        console.emit_json(rows) if as_json else lifecycle_view.all_labs(rows)
        return
    report = lifecycle.status(directory, name)
    lifecycle_view.status_json(report) if as_json else lifecycle_view.status(report)
    if not report.all_running:
        raise typer.Exit(1)


@app.command("logs")
@handles_errors(on_interrupt=STOPS)
def logs_cmd(
    server: Annotated[Optional[str], typer.Argument(help="tls or mtls [default: both].", show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end to start with.")] = 50,
) -> None:
    """nginx's access and error logs: TLS version, cipher, client certificate subject and verdict per request."""

    lifecycle_view.logs(lifecycle.logs(directory, name, server, tail=tail, follow=follow), both=server is None)


@app.command("doctor")
@handles_errors
def doctor_cmd(
    directory: DirOpt = None, name: NameOpt = None, tls_port: TlsPortOpt = None, mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None, bind: BindOpt = None, image: ImageOpt = None,
    hours: Annotated[float, typer.Option("--hours", help="Certificates must stay valid this many hours (the workshop).")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Preflight: everything `lab up` needs, a ✓/✗ line each, and the fix for each ✗."""

    lab = selection.select(directory, name, port_offset=port_offset, tls_port=tls_port, mtls_port=mtls_port,
                         bind=bind, image=image)
    checks = lifecycle.doctor(lab, hours)
    console.emit_json(checks) if as_json else lifecycle_view.doctor(checks)
    if any(not c.ok and c.blocking for c in checks):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- hands-on: diff, reset, reload



@app.command("diff")
@handles_errors
def diff_cmd(files: FilesArg = None, directory: DirOpt = None, name: NameOpt = None) -> None:
    """Your edits: each rendered file changed by hand, as a unified diff against the lesson. Exit 1 when there are edits."""

    found = edits.diff(selection.select(directory, name, require=True), files)
    edits_view.diff(found)
    if found:
        raise typer.Exit(1)


@app.command("reset")
@handles_errors
def reset_cmd(files: FilesArg = None, directory: DirOpt = None, name: NameOpt = None) -> None:
    """Back to the lesson: edited files get the lesson's version (your copy is kept beside it); running servers reload."""

    edits_view.reset(edits.reset(selection.select(directory, name, require=True), files))


@app.command("reload")
@handles_errors
def reload_cmd(
    server: Annotated[Optional[str], typer.Argument(help="tls or mtls [default: both].", show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None,
) -> None:
    """Load the servers' files as they are now: nginx -t first (a broken edit changes nothing), then no downtime."""

    edits_view.reloaded(edits.reload(selection.select(directory, name, require=True), server))


# --------------------------------------------------------------------------- the handshake


@app.command("handshake")
@handles_errors
def handshake_cmd(
    scenario: Annotated[str, typer.Argument(help="A lab verify scenario.")] = "client-cert",
    directory: DirOpt = None, name: NameOpt = None,
    tls: Annotated[Optional[str], typer.Option("--tls", help="1.2 or 1.3 only [default: what client and server agree].",
                                               show_default=False)] = None,
    as_json: JsonOpt = False,
    keylog: Annotated[Optional[Path], typer.Option("--keylog", help="Write the session keys (NSS key log format) here.",
                                                   show_default=False)] = None,
    pcap: Annotated[Optional[Path], typer.Option("--pcap", help="Write a capture of this connection here (tcpdump).",
                                                 show_default=False)] = None,
    as_student: AsOpt = None, host: HostOpt = None,
    show_command: Annotated[bool, typer.Option("--command", help="Print the openssl command behind the diagram, "
                                               "alone (on the projector the diagram only names it).")] = False,
) -> None:
    """The real TLS handshake of a scenario, message by message, as a sequence diagram (openssl s_client -msg)."""

    lab = selection.select(directory, name, require=True)
    seen = lesson.handshake(lab, scenario, tls=tls, keylog=keylog, pcap=pcap, as_student=as_student, host=host)
    if as_json:
        console.emit_json(seen)
        return
    if show_command:
        handshake_view.command(seen, lab.dir)
        return
    handshake_view.handshake(seen, lab.dir)
    handshake_view.handshake_files(keylog, pcap, seen.address)


# --------------------------------------------------------------------------- the demo


@app.command("demo")
@handles_errors
def demo_cmd(
    directory: DirOpt = None, name: NameOpt = None,
    list_steps: Annotated[bool, typer.Option("--list", help="The steps, and stop.")] = False,
    start: Annotated[int, typer.Option("--from", help="Begin at this step.")] = 1,
    auto: Annotated[Optional[float], typer.Option(
        "--auto", help="Go on every N seconds without a keyboard (0: no pauses, for rehearsal).",
        show_default=False)] = None,
) -> None:
    """The lesson, live, one step a screen: each step's command run for real. Enter next, b back, r rerun, q quit."""
    steps = demo.demo_steps()
    if list_steps:
        demo_view.demo_list(demo.titles(selection.select(directory, name), steps))
        return
    demo.check_from(start, steps)
    if auto is not None and auto < 0:
        raise UsageError(f"--auto {auto:g}: give 0 or more seconds")
    lab = selection.select(directory, name, publishing=True)
    with console.progress("the demo needs a running lab…") as say:
        started = demo.demo_ready(lab, progress=say)
    if started is not None:
        console.note(f"no lab was running: started lab {lab.name} ({lab.dir}/) for the demo")
    player.demo(steps, start, auto, lambda number: demo.demo_step(lab, steps, number), demo.departures(lab))


# --------------------------------------------------------------------------- break-and-fix exercises

exercise_app = typer.Typer(help="Break-and-fix exercises: start one, diagnose it with lab verify/logs/curl/openssl, "
                                "fix it, check it.", no_args_is_help=True)
app.add_typer(exercise_app, name="exercise")


@exercise_app.command("list")
@handles_errors
def exercise_list(directory: DirOpt = None, name: NameOpt = None, from_dir: FromOpt = None,
                  as_json: JsonOpt = False) -> None:
    """Every exercise: id, title, what its check tries (with this lab's ports, when there is one)."""
    # A lab named by --dir/--name/LAB_* must exist; ./mtls-lab is used when it does, the defaults when not.
    named = directory is not None or name is not None
    found = exercises.exercises(selection.select(directory, name, require=named), from_dir)
    console.emit_json(found) if as_json else exercises_view.exercises(found)


@exercise_app.command("start")
@handles_errors
def exercise_start(
    exercise_id: Annotated[str, typer.Argument(metavar="ID", help="The exercise (lab exercise list).")],
    directory: DirOpt = None, name: NameOpt = None, from_dir: FromOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Start even on a lab that is not the lesson (edits "
                                        "present, a defence turned off).")] = False,
) -> None:
    """Make the exercise's mistake in the running lab (every file it touches saved first) and show it failing."""

    lab = selection.select(directory, name, require=True)
    exercises_view.exercise_started(exercises.exercise_start(lab, exercise_id, from_dir, force), lab.selector)


@exercise_app.command("hint")
@handles_errors
def exercise_hint(directory: DirOpt = None, name: NameOpt = None) -> None:
    """A nudge for the running exercise (not the answer)."""

    exercises_view.exercise_hint(*exercises.exercise_hint(selection.select(directory, name, require=True)))


@exercise_app.command("check")
@handles_errors
def exercise_check(directory: DirOpt = None, name: NameOpt = None) -> None:
    """Is it fixed? Decided by real requests (any correct fix passes); says what still fails. Exit 0 only when fixed."""

    report = exercises.exercise_check(selection.select(directory, name, require=True))
    exercises_view.exercise_checked(report)
    if not report.fixed:
        raise typer.Exit(1)


@exercise_app.command("solution")
@handles_errors
def exercise_solution(
    directory: DirOpt = None, name: NameOpt = None,
    apply: Annotated[bool, typer.Option("--apply", help="Carry out the reference fix, then check it.")] = False,
) -> None:
    """The reference fix of the running exercise; --apply carries it out and checks it."""

    report = exercises.exercise_solution(selection.select(directory, name, require=True), apply=apply)
    exercises_view.exercise_solution(report, applied=apply)
    if apply and not report.fixed:
        raise typer.Exit(1)


@exercise_app.command("reset")
@handles_errors
def exercise_reset(directory: DirOpt = None, name: NameOpt = None) -> None:
    """End the running exercise: the lab back to the lesson's state, servers reloaded."""

    exercises_view.exercise_reset(exercises.exercise_reset(selection.select(directory, name, require=True)))


@exercise_app.command("status")
@handles_errors
def exercise_status(directory: DirOpt = None, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """Which exercise is running in this lab, and whether it is fixed now."""

    lab = selection.select(directory, name, require=True)
    report = exercises.exercise_status(lab)
    exercises_view.exercise_status(report, as_json, exercises.exercise_records(lab))


# --------------------------------------------------------------------------- verify, curl


@app.command("verify")
@handles_errors
def verify_cmd(
    named: Annotated[Optional[list[str]], typer.Argument(
        help="Scenarios to run, each shown with what it shows [default: all].", show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None,
    scenario: Annotated[Optional[list[str]], typer.Option("--scenario", help="Run only this scenario; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario on stdout.")] = False,
    show_commands: Annotated[bool, typer.Option("--show-commands", help="Print the equivalent curl command under each row.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="What each scenario shows, in a table (the default above "
                                          "100 columns).")] = False,
    host: HostOpt = None, as_student: AsOpt = None,
) -> None:
    """Check both servers: what must succeed succeeds, what must fail fails, and why."""
    only = [*(named or []), *(scenario or [])]
    lesson.check_names(only)  # a misspelt name fails before the lab is read
    lab = selection.select(directory, name, require=True)
    report = lesson.verify(lab, only=only or None, host=host, as_student=as_student)
    console.emit_json(report.results) if as_json else checks_view.verify(report.results, show_commands, explain,
                                                                         named=bool(named))
    if report.failure:
        raise report.failure


@app.command("curl")
@handles_errors
def curl_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name, as in `lab verify`, or gallery:NAME (lab gallery).")],
    directory: DirOpt = None, name: NameOpt = None, host: HostOpt = None, as_student: AsOpt = None,
) -> None:
    """Print the curl command that shows one scenario, to copy and paste."""
    lesson.check_names([scenario])
    typer.echo(lesson.curl(selection.select(directory, name, require=True), scenario, host, as_student))


# --------------------------------------------------------------------------- students, certificates

client_app = typer.Typer(help="A certificate for every student: add, list, revoke (live, without downtime).",
                         no_args_is_help=True)
app.add_typer(client_app, name="client")


@client_app.command("add")
@handles_errors
def client_add(
    names: Annotated[Optional[list[str]], typer.Argument(help="Student names.", show_default=False)] = None,
    directory: DirOpt = None, name: NameOpt = None,
    from_file: Annotated[Optional[Path], typer.Option("--from-file", help="A class list: one name a line.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-issue an existing student's certificate (the old one is revoked).")] = False,
    legacy_p12: Annotated[bool, typer.Option("--legacy-p12", help="PKCS#12 with the old algorithms older macOS/iOS need.")] = False,
    show_passwords: Annotated[bool, typer.Option("--show-passwords", help="Print the .p12 passwords (not in front of a class).")] = False,
    role: Annotated[str, typer.Option("--role", help="student or instructor (the mTLS server's /instructor/ is for "
                                      "instructors); a class list's role column wins.")] = "student",
    ttl: Annotated[Optional[str], typer.Option(
        "--ttl", help="A short-lived certificate: it ends after this long (10m, 8h, 2d; 1m to the lab's limit), "
                      "nothing to revoke [default: the lab's --days].", show_default=False)] = None,
) -> None:
    """Issue a client certificate per student: clients/NAME/ with .crt, .key, a password-protected .p12, README."""

    if role not in ("student", "instructor"):
        raise UsageError(f"--role {role!r}: a role is student or instructor")
    from lab.core.settings import validate_ttl

    seconds = validate_ttl(ttl) if ttl is not None else None
    lab = selection.select(directory, name, require=True)
    with console.progress() as say:
        report = students.add_students(lab, names, from_file, force=force, legacy_p12=legacy_p12, progress=say,
                                       role=role, ttl=seconds)
    with Done(f"{len(report.issued)} student(s) issued (lab client list{lab.selector} shows them)"):
        students_view.issued(report, lab.selector, show_passwords)


@client_app.command("renew")
@handles_errors
def client_renew(
    student: Annotated[str, typer.Argument(help="Student name.")], directory: DirOpt = None, name: NameOpt = None,
) -> None:
    """Re-issue a student's certificate (a new key, the same role and lifetime) before it ends: a short-lived one
    is left to end by itself, a longer one is revoked."""

    lab = selection.select(directory, name, require=True)
    students_view.renewed(students.renew(lab, student), lab.selector)


@client_app.command("sign")
@handles_errors
def client_sign(
    request: Annotated[Path, typer.Argument(help="The student's certificate request (REQUEST.csr), PEM or DER.")],
    directory: DirOpt = None, name: NameOpt = None,
    student: Annotated[Optional[str], typer.Option("--student", help="The student's name [default: the request's CN].",
                                                   show_default=False)] = None,
) -> None:
    """Sign a student's own request: their key never leaves them (no key or .p12 here). Checked, then lab's extensions."""

    lab = selection.select(directory, name, require=True)
    students_view.signed(students.sign_request(lab, request, student), lab.selector)


# lab handout, lab room: lab/cli/room.py
app.command("handout")(room_commands.handout_cmd)
app.command("room")(room_commands.room_cmd)


# lab access / allow / deny: lab/cli/access.py
app.command("access")(access_commands.access_cmd)
# lab gallery: lab/cli/gallery.py
app.command("gallery")(gallery_commands.gallery_cmd)
app.command("race")(gallery_commands.race_cmd)
app.command("allow")(access_commands.allow_cmd)
app.command("deny")(access_commands.deny_cmd)


@client_app.command("list")
@handles_errors
def client_list(directory: DirOpt = None, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """Every student: name, serial, expiry, status (valid / revoked / expired)."""

    found = students.list_students(selection.select(directory, name, require=True))
    console.emit_json(found) if as_json else students_view.students(found)


@client_app.command("revoke")
@handles_errors
def client_revoke(
    student: Annotated[str, typer.Argument(help="Student name.")], directory: DirOpt = None, name: NameOpt = None,
) -> None:
    """Revoke a student's certificate; the running mTLS server enforces it at once, without downtime."""

    students_view.revoked(students.revoke(selection.select(directory, name, require=True), student))


@client_app.command("remove")
@handles_errors
def client_remove(
    student: Annotated[str, typer.Argument(help="Student name.")], directory: DirOpt = None, name: NameOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (for scripts).")] = False,
) -> None:
    """Remove a student made by mistake: revoke their certificate (enforced at once), then forget them: folder,
    .p12 password, handout and password-sheet row. The CA database keeps the revoked record."""
    lab = selection.select(directory, name, require=True)
    found = students.find(lab, student)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"lab client remove {student} asks first, and there is no terminal to ask in",
                             hint=f"add --yes: lab client remove {student} --yes{lab.selector}")
        if not typer.confirm(f"remove {found.name} (serial {found.serial}): revoke, and delete their folder, password "
                             "and handout?", default=False):
            raise typer.Exit(1)
    students_view.removed(students.remove(lab, student))


@app.command("certs")
@handles_errors
def certs_cmd(directory: DirOpt = None, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """The lab's whole PKI: subject, issuer, serial, names, usages, validity, SHA-256 fingerprint of each certificate."""

    lab = selection.select(directory, name, require=True)
    infos = students.pki(lab)
    console.emit_json(infos) if as_json else students_view.pki(lab.dir, infos)
    students_view.expiry_warnings(infos)


# --------------------------------------------------------------------------- images

image_app = typer.Typer(help="The nginx image, for rooms with no (or a rate-limited) registry: pull, save, load.",
                        no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("pull")
@handles_errors
def image_pull(directory: DirOpt = None, name: NameOpt = None, image: ImageOpt = None) -> None:
    """Pull the lab's image from its registry (with progress), if it is not here yet."""

    lab = selection.select(directory, name, image=image)
    with console.progress(f"pulling {lab.settings.image}…") as say:
        pulled = images.image_pull(lab, progress=say)
    images_view.image_pulled(lab.settings.image, pulled)


@image_app.command("save")
@handles_errors
def image_save(
    file: Annotated[Path, typer.Argument(help="Tar file to write (hand it out on a USB stick).")],
    directory: DirOpt = None, name: NameOpt = None, image: ImageOpt = None,
) -> None:
    """Save the lab's image to a tar file (docker save NAME:TAG), streamed."""

    lab = selection.select(directory, name, image=image)
    with console.progress(f"saving {lab.settings.image}…") as say:
        size = images.image_save(lab, file, progress=say)
    images_view.image_saved(lab.settings.image, file, size)


@image_app.command("load")
@handles_errors
def image_load(file: Annotated[Path, typer.Argument(help="Tar file made by `lab image save`.")]) -> None:
    """Load an image from a tar file (docker load), streamed: no registry needed."""

    with console.progress(f"loading {file}…") as say:
        tags = images.image_load(file, progress=say)
    images_view.image_loaded(file, tags)


def main() -> None:
    app(prog_name="lab")


if __name__ == "__main__":
    main()
