"""The command line: it only wires the stages together and prints.

certificates (lab/certs.py) -> configuration (lab/render.py) -> containers
(lab/runtime.py) -> verification (lab/verify.py). Stages return data and raise
LabError; this module is the one place that prints and turns errors into a
one-line message and an exit code. Stage modules are imported inside the
commands so that `lab --help` does not pay for Docker, Jinja or cryptography.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from lab import __version__, layout
from lab.errors import EXIT_CODES, LabError, UsageError

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

DirOpt = Annotated[Optional[Path], typer.Option(
    "--dir", envvar="LAB_DIR", help="Lab directory [default: ./NAME, i.e. ./mtls-lab].", show_default=False)]
NameOpt = Annotated[Optional[str], typer.Option(
    "--name", envvar="LAB_NAME", help=f"Lab name: containers, network, labels [default: saved, else {layout.DEFAULT_NAME}].",
    show_default=False)]
HostOpt = Annotated[Optional[str], typer.Option(
    "--host", help="Check a lab on another machine (e.g. the instructor's) by this name or address, "
                   "with this lab directory's CA and client files; the name must be in the server "
                   "certificate (lab up --san).", show_default=False)]


def _err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _out_console():
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or saved for a handout: don't squeeze the tables into 80 columns.
        console.width = 160
    return console


def _fail(e: LabError) -> typer.Exit:
    err = _err_console()
    err.print(f"[bold red]ERROR:[/] {e}", markup=True, soft_wrap=True)
    if e.details:
        for line in e.details.splitlines():
            err.print(f"  | {line}", markup=False, soft_wrap=True)
    if e.hint:
        err.print(f"  fix: {e.hint}", markup=False, soft_wrap=True)
    return typer.Exit(e.exit_code)


def handles_errors(command):
    """The one boundary where LabError becomes a message and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LabError as e:
            raise _fail(e) from None
        except KeyboardInterrupt:
            _err_console().print("interrupted: what this run made was removed", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool):
    if value:
        typer.echo(f"lab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
):
    pass


def _lab_dir(directory: Optional[Path], name: Optional[str]) -> Path:
    from lab.settings import validate_name

    if name is not None:
        validate_name(name)
    path = directory if directory is not None else Path(name or layout.DEFAULT_NAME)
    if path.exists() and not path.is_dir():
        raise UsageError(f"lab directory {path} is a file: choose another with --dir")
    return path


def _host(host: Optional[str]) -> Optional[str]:
    from lab.settings import validate_san

    if host is None:
        return None
    return validate_san(host).split(":", 1)[1]


def _saved_settings(lab_dir: Path, name: Optional[str]):
    """Settings of an existing lab (for verify): what `lab up` saved."""
    from lab import settings

    if not (lab_dir / layout.SETTINGS_FILE).is_file():
        raise LabError(f"no lab in {lab_dir} (no {layout.SETTINGS_FILE})", hint="run `lab up` first, or point --dir at the lab")
    return settings.resolve(lab_dir, {"name": name})


# --------------------------------------------------------------------------- up


@app.command()
@handles_errors
def up(
    directory: DirOpt = None,
    name: NameOpt = None,
    tls_port: Annotated[Optional[int], typer.Option("--tls-port", envvar="LAB_TLS_PORT", show_default=False,
                                                    help=f"Host port of the TLS server [default: {layout.DEFAULT_TLS_PORT}].")] = None,
    mtls_port: Annotated[Optional[int], typer.Option("--mtls-port", envvar="LAB_MTLS_PORT", show_default=False,
                                                     help=f"Host port of the mTLS server [default: {layout.DEFAULT_MTLS_PORT}].")] = None,
    bind: Annotated[Optional[str], typer.Option("--bind", envvar="LAB_BIND", show_default=False,
                                                help="Address the ports are published on [default: 127.0.0.1, this machine only; "
                                                     "0.0.0.0 lets students on the room's network connect].")] = None,
    image: Annotated[Optional[str], typer.Option("--image", envvar="LAB_IMAGE", show_default=False,
                                                 help=f"nginx image [default: {layout.DEFAULT_IMAGE}; offline: {layout.OFFLINE_IMAGE}, "
                                                      "built by scripts/build-nginx-image.sh].")] = None,
    san: Annotated[Optional[list[str]], typer.Option("--san", show_default=False,
                                                     help="Extra name for the server certificate (DNS name or IP); repeatable. "
                                                          "localhost, 127.0.0.1 and ::1 are always in it.")] = None,
    days: Annotated[Optional[int], typer.Option("--days", show_default=False,
                                                help=f"Lifetime of new leaf certificates in days [default: {layout.DEFAULT_DAYS}; "
                                                     f"at most {layout.MAX_DAYS}].")] = None,
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Make new certificates even if valid ones exist.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for both servers to answer TLS.")] = 30.0,
):
    """Make certificates, render the configs and start both nginx servers; return when both answer TLS."""
    from lab import certs, render, runtime, settings, verify

    started = time.monotonic()
    lab_dir = _lab_dir(directory, name)
    s = settings.resolve(lab_dir, {"name": name, "tls_port": tls_port, "mtls_port": mtls_port, "bind": bind,
                                   "image": image, "days": days, "sans": tuple(san) if san else None})
    err = _err_console()
    client = runtime.connect()  # before anything is written: no engine, nothing made
    made_dir = not lab_dir.exists()
    try:
        try:
            lab_dir.mkdir(parents=True, exist_ok=True)
            probe = lab_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise LabError(f"lab directory {lab_dir} is not writable ({e.strerror})",
                           hint="choose another with --dir, or fix its permissions") from None
        with err.status("certificates…"):
            cert_result = certs.ensure(lab_dir, s, regenerate=regenerate)
        rendered = render.render(lab_dir, s)
        with err.status("containers…") as status:
            result = runtime.up(rendered.compose_file, cert_result.directory / layout.SERVER_CA_CRT, timeout=timeout,
                                progress=lambda msg: status.update(msg), client=client)
        settings.save(lab_dir, s)
    except BaseException:
        if made_dir:
            shutil.rmtree(lab_dir, ignore_errors=True)
        raise

    out = _out_console()
    state = "is up" if result.changed else "was already up (nothing to do)"
    out.print(f"[green]✓[/] lab [bold]{s.name}[/] {state} ({time.monotonic() - started:.1f} s)")
    out.print(f"  directory     {lab_dir}/  (certs/, nginx-tls/, nginx-mtls/, {layout.COMPOSE_FILE})", markup=False)
    certs_said = "made now" if cert_result.generated else "reused"
    out.print(f"  certificates  {certs_said}, valid until {cert_result.not_after:%Y-%m-%d}; "
              f"server certificate for {', '.join(x.split(':', 1)[1] for x in cert_result.sans)}", markup=False)
    for server, container in zip(layout.SERVERS, result.containers):
        port = s.ports()[server]
        what = "TLS " if server == "tls" else "mTLS"
        out.print(f"  {what}          https://localhost:{port}/{layout.HELLO_FILE} on {s.bind}  "
                  f"(container {container}, image {s.image})", markup=False)
    if result.pulled:
        out.print(f"  image         {s.image} pulled", markup=False)
    out.print("Try next:")
    out.print("  lab verify" + _dir_args(directory, lab_dir, name), markup=False)
    for sc in verify.SCENARIOS:
        if sc.name in ("trusted", "client-cert", "no-cert"):
            out.print("  " + verify.curl_command(sc, lab_dir, s), markup=False)
    out.print("  lab down" + _dir_args(directory, lab_dir, name), markup=False)


def _dir_args(directory: Optional[Path], lab_dir: Path, name: Optional[str]) -> str:
    if directory is not None:
        return f" --dir {lab_dir}"
    return f" --name {name}" if name else ""


# --------------------------------------------------------------------------- verify


@app.command("verify")
@handles_errors
def verify_cmd(
    directory: DirOpt = None,
    name: NameOpt = None,
    scenario: Annotated[Optional[list[str]], typer.Option("--scenario", help="Run only this scenario; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario on stdout.")] = False,
    show_commands: Annotated[bool, typer.Option("--show-commands", help="Print the equivalent curl command under each row.")] = False,
    host: HostOpt = None,
):
    """Check both servers: what must succeed succeeds, what must fail fails, and why."""
    from lab import verify

    lab_dir = _lab_dir(directory, name)
    unknown = [x for x in scenario or [] if x not in verify.scenario_names()]
    if unknown:
        raise UsageError(f"unknown scenario {', '.join(unknown)}: known are {', '.join(verify.scenario_names())}")
    s = _saved_settings(lab_dir, name)
    results = verify.run(lab_dir, s, only=scenario, host=_host(host))
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        _print_results(results, show_commands)
    if failed:
        from lab.errors import VerificationFailed

        hint = ""
        if any(r.detail.get("kind") == "connect-error" for r in failed):
            hint = "is the lab running? `lab up` starts it"
        raise VerificationFailed(f"{len(failed)} of {len(results)} scenarios did not behave as expected: "
                                 + ", ".join(r.scenario for r in failed), hint=hint)


def _print_results(results, show_commands: bool) -> None:
    from rich import box
    from rich.table import Table

    out = _out_console()
    for server, title in (("tls", "TLS server"), ("mtls", "mTLS server")):
        rows = [r for r in results if r.server == server]
        if not rows:
            continue
        port = rows[0].detail.get("address", "").rsplit(":", 1)[-1]
        table = Table(title=f"{title} (port {port})", title_justify="left", show_lines=show_commands, expand=False,
                      box=box.SIMPLE_HEAD)
        table.add_column("", no_wrap=True)
        table.add_column("scenario", no_wrap=True)
        table.add_column("what it shows")
        table.add_column("expected")
        table.add_column("observed")
        for r in rows:
            mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
            shows = r.shows + (f"\n$ {r.curl}" if show_commands else "")
            table.add_row(mark, r.scenario, shows, r.expected, r.observed)
        out.print(table)
    passed = sum(r.passed for r in results)
    out.print(f"{passed} passed, {len(results) - passed} failed", markup=False)


@app.command("curl")
@handles_errors
def curl_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name, as in `lab verify`.")],
    directory: DirOpt = None,
    name: NameOpt = None,
    host: HostOpt = None,
):
    """Print the curl command that shows one scenario, to copy and paste."""
    from lab import verify

    by_name = {sc.name: sc for sc in verify.SCENARIOS}
    if scenario not in by_name:
        raise UsageError(f"unknown scenario {scenario}: known are {', '.join(by_name)}")
    lab_dir = _lab_dir(directory, name)
    s = _saved_settings(lab_dir, name)
    sc = by_name[scenario]
    typer.echo(verify.curl_command(sc, lab_dir, s, _host(host)))


# --------------------------------------------------------------------------- down


@app.command()
@handles_errors
def down(
    directory: DirOpt = None,
    name: NameOpt = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the lab directory (certificates included).")] = False,
):
    """Remove the lab's containers and network (found by label, nothing else); idempotent."""
    from lab import runtime, settings

    lab_dir = _lab_dir(directory, name)
    lab_name = name or settings.load_saved(lab_dir).get("name") or layout.DEFAULT_NAME if lab_dir.is_dir() else (name or layout.DEFAULT_NAME)
    result = runtime.down(lab_name)
    out = _out_console()
    if result.containers or result.networks:
        out.print(f"[green]✓[/] lab [bold]{lab_name}[/] is down: removed "
                  + ", ".join([f"container {c}" for c in result.containers] + [f"network {n}" for n in result.networks]))
    else:
        out.print(f"[green]✓[/] lab [bold]{lab_name}[/] is down: nothing of it was running")
    if purge and lab_dir.is_dir():
        if not ((lab_dir / layout.SETTINGS_FILE).exists() or (lab_dir / layout.COMPOSE_FILE).exists()):
            raise UsageError(f"{lab_dir} does not look like a lab directory (no {layout.SETTINGS_FILE}): not deleting it")
        shutil.rmtree(lab_dir)
        out.print(f"  deleted {lab_dir}/", markup=False)


def main() -> None:
    app(prog_name="lab")


if __name__ == "__main__":
    main()
