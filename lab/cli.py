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
AsOpt = Annotated[Optional[str], typer.Option(
    "--as", help="Run the client-cert scenario with this student's certificate (lab client add NAME).",
    show_default=False)]


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
        except Exception as e:
            # The engine or the file system failing mid-command is an expected
            # failure too: one message, not a traceback. Anything else is a bug
            # and keeps its traceback.
            expected = _expected_failure(e)
            if expected is None:
                raise
            raise _fail(expected) from None

    return wrapper


def _expected_failure(e: Exception) -> Optional[LabError]:
    from lab.errors import RuntimeFailure

    docker_errors = sys.modules.get("docker.errors")
    if docker_errors is not None and isinstance(e, docker_errors.DockerException):
        from lab.runtime import DOCKER_HINT, short_error

        return RuntimeFailure(f"the Docker engine failed: {short_error(e)}", hint=DOCKER_HINT)
    if isinstance(e, OSError):
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return LabError(f"{e.strerror or e}{where}", hint="check the path and its permissions")
    return None


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


def _lab_name(lab_dir: Path, name: Optional[str], client=None) -> str:
    """--name, else the lab directory's saved name, else the lab whose
    containers carry this directory's label (the directory may be gone), else the default."""
    from lab import settings

    if name:
        return name
    if lab_dir.is_dir():
        saved = settings.load_saved(lab_dir).get("name")
        if saved:
            return saved
    if client is not None:
        from lab import runtime

        found = runtime.lab_for_dir(client, lab_dir)
        if found:
            return found
    return layout.DEFAULT_NAME


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


# --------------------------------------------------------------------------- up and friends

TlsPortOpt = Annotated[Optional[int], typer.Option(
    "--tls-port", envvar="LAB_TLS_PORT", show_default=False,
    help=f"Host port of the TLS server [default: saved, else {layout.DEFAULT_TLS_PORT}].")]
MtlsPortOpt = Annotated[Optional[int], typer.Option(
    "--mtls-port", envvar="LAB_MTLS_PORT", show_default=False,
    help=f"Host port of the mTLS server [default: saved, else {layout.DEFAULT_MTLS_PORT}].")]
PortOffsetOpt = Annotated[Optional[int], typer.Option(
    "--port-offset", envvar="LAB_PORT_OFFSET", show_default=False,
    help=f"Add N to both default ports ({layout.DEFAULT_TLS_PORT}+N, {layout.DEFAULT_MTLS_PORT}+N): "
         "one lab per student on a shared host.")]
BindOpt = Annotated[Optional[str], typer.Option(
    "--bind", envvar="LAB_BIND", show_default=False,
    help="Address the ports are published on [default: saved, else 127.0.0.1, this machine only; "
         "0.0.0.0 lets students on the room's network connect].")]
ImageOpt = Annotated[Optional[str], typer.Option(
    "--image", envvar="LAB_IMAGE", show_default=False,
    help=f"nginx image [default: saved, else {layout.DEFAULT_IMAGE}; offline: {layout.OFFLINE_IMAGE}, "
         "built by scripts/build-nginx-image.sh].")]
SanOpt = Annotated[Optional[list[str]], typer.Option(
    "--san", show_default=False,
    help="Extra name for the server certificate (DNS name or IP); repeatable. "
         "localhost, 127.0.0.1 and ::1 are always in it.")]
DaysOpt = Annotated[Optional[int], typer.Option(
    "--days", show_default=False,
    help=f"Lifetime of new leaf certificates in days [default: {layout.DEFAULT_DAYS}; at most {layout.MAX_DAYS}].")]


def _settings(lab_dir: Path, name, tls_port, mtls_port, port_offset, bind, image, san, days):
    """Flags and LAB_* variables over the lab directory's saved settings over defaults."""
    from lab import settings

    if port_offset is not None:
        if not 0 <= port_offset <= 65535 - layout.DEFAULT_MTLS_PORT:
            raise UsageError(f"invalid --port-offset {port_offset}: from 0 to {65535 - layout.DEFAULT_MTLS_PORT}")
        tls_port = tls_port if tls_port is not None else layout.DEFAULT_TLS_PORT + port_offset
        mtls_port = mtls_port if mtls_port is not None else layout.DEFAULT_MTLS_PORT + port_offset
    return settings.resolve(lab_dir, {"name": name, "tls_port": tls_port, "mtls_port": mtls_port, "bind": bind,
                                      "image": image, "days": days, "sans": tuple(san) if san else None})


_PREFLIGHT_ERRORS = {"docker engine": "DockerUnavailable", "openssl": "CertificateError", "lab directory": "LabError",
                     "clock": "LabError"}


def _preflight(lab_dir: Path, s):
    """The doctor's checks that block `lab up`, before anything is written; returns the engine client."""
    from lab import doctor, errors

    client, engine = doctor.check_engine()
    checks = [engine, doctor.check_openssl(), doctor.check_dir(lab_dir), doctor.check_clock(client, _now())]
    if client is not None:
        checks[2:2] = doctor.check_ports(client, s)
    for check in checks:
        if not check.ok and check.blocking:
            kind = _PREFLIGHT_ERRORS.get(check.name, "RuntimeFailure")
            raise getattr(errors, kind)(check.detail, hint=check.fix)
    return client


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def _start_generation(lab_dir: Path, s, regenerate: bool):
    """Start gen-certs.sh early when new certificates are needed; None when not (or when it cannot start here:
    the ordinary path then reports why)."""
    from lab import certs

    parent = lab_dir.absolute().parent
    if not certs.needs_generation(lab_dir, regenerate) or not parent.is_dir():
        return None
    try:
        return certs.Generation(parent, s)
    except (OSError, LabError):
        return None


def _make_lab_dir(lab_dir: Path) -> None:
    try:
        lab_dir.mkdir(parents=True, exist_ok=True)
        probe = lab_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LabError(f"lab directory {lab_dir} is not writable ({e.strerror})",
                       hint="choose another with --dir, or fix its permissions") from None


RegenerateOpt = Annotated[bool, typer.Option("--regenerate", help="Make new certificates even if valid ones exist.")]


def _build(lab_dir: Path, s, regenerate: bool, start=None, pending=None):
    """Certificates, then configuration, then (for up) `start(rendered, certs)`; then save the settings.

    A lab directory this run created is removed again if any step fails or is
    interrupted: nothing half-made is left behind."""
    from lab import certs, render as rendering, settings
    from lab.locking import lab_lock

    try:
        with lab_lock(s.name):
            return _build_locked(lab_dir, s, regenerate, start, pending, certs, rendering, settings)
    finally:
        if pending is not None and pending.tmp.exists():
            pending.discard()


def _build_locked(lab_dir: Path, s, regenerate: bool, start, pending, certs, rendering, settings):
    made_dir = not lab_dir.exists()
    try:
        _make_lab_dir(lab_dir)
        with _err_console().status("certificates…"):
            cert_result = certs.ensure(lab_dir, s, regenerate=regenerate, pending=pending)
        rendered = rendering.render(lab_dir, s)
        started = start(rendered, cert_result) if start else None
        settings.save(lab_dir, s)
    except BaseException:
        if made_dir:
            shutil.rmtree(lab_dir, ignore_errors=True)
        raise
    return cert_result, rendered, started


@app.command()
@handles_errors
def up(
    directory: DirOpt = None,
    name: NameOpt = None,
    tls_port: TlsPortOpt = None,
    mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None,
    bind: BindOpt = None,
    image: ImageOpt = None,
    san: SanOpt = None,
    days: DaysOpt = None,
    regenerate: RegenerateOpt = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for both servers to answer TLS.")] = 30.0,
):
    """Make certificates, render the configs and start both nginx servers; return when both answer TLS."""
    from lab import runtime

    started = time.monotonic()
    lab_dir = _lab_dir(directory, name)
    s = _settings(lab_dir, name, tls_port, mtls_port, port_offset, bind, image, san, days)
    # OpenSSL makes new certificates (into a staging folder: the lab directory
    # is not touched) while Python loads the Docker SDK for the preflight.
    pending = _start_generation(lab_dir, s, regenerate)
    try:
        client = _preflight(lab_dir, s)  # before anything is written: a blocked lab up makes nothing
    except BaseException:
        if pending is not None:
            pending.discard()
        raise

    def start(rendered, cert_result):
        from lab import clients

        crl_renewed = clients.ensure_fresh_crl(lab_dir)
        with _err_console().status("containers…") as status:
            result = runtime.up(rendered.compose_file, cert_result.directory / layout.SERVER_CA_CRT, timeout=timeout,
                                progress=lambda msg: status.update(msg), client=client)
        if crl_renewed and not result.changed:
            runtime.reload(client, s.name, "mtls")  # the running server picks up the renewed CRL
        return result

    cert_result, _, result = _build(lab_dir, s, regenerate, start, pending)

    out = _out_console()
    state = "is up" if result.changed else "was already up (nothing to do)"
    out.print(f"[green]✓[/] lab [bold]{s.name}[/] {state} ({time.monotonic() - started:.1f} s)")
    out.print(f"  directory     {lab_dir}/  (certs/, demo-certs/, nginx-tls/, nginx-mtls/, {layout.COMPOSE_FILE})",
              markup=False)
    certs_said = "made now" if cert_result.generated else "reused"
    out.print(f"  certificates  {certs_said}; server certificate for "
              f"{', '.join(x.split(':', 1)[1] for x in cert_result.sans)}", markup=False)
    _say_dropped(out, cert_result)
    if result.pulled:
        out.print(f"  image         {s.image} pulled", markup=False)
    _print_status(out, s, runtime.status(client, s.name, cert_result.directory / layout.SERVER_CA_CRT), lab_dir)
    _print_next(out, lab_dir, s, directory, name)


def _say_dropped(out, cert_result) -> None:
    if cert_result.dropped_students:
        names = " ".join(cert_result.dropped_students)
        out.print(f"  [yellow]students[/]      new CAs: the certificates of {names} were signed by the old client "
                  f"CA and were removed; issue new ones: lab client add {names}")


def _print_next(out, lab_dir: Path, s, directory, name) -> None:
    from lab import verify

    where = _dir_args(directory, lab_dir, name)
    out.print("Try next:")
    out.print(f"  lab verify{where}          # every scenario, what it shows, ✓/✗", markup=False)
    for sc in verify.SCENARIOS:
        if sc.name in ("trusted", "client-cert", "no-cert"):
            out.print("  " + verify.curl_command(sc, lab_dir, s), markup=False)
    out.print(f"  lab logs mtls{where}       # what the server saw on each request", markup=False)
    out.print(f"  lab down{where}", markup=False)


def _print_status(out, s, servers, lab_dir: Optional[Path]) -> None:
    from rich import box
    from rich.table import Table

    expiry = _days_to_expiry(lab_dir) if lab_dir is not None else None
    table = Table(title=f"lab {s.name}" + (f"  ({lab_dir}/)" if lab_dir else ""), title_justify="left",
                  box=box.SIMPLE_HEAD)
    for col in ("server", "container", "state", "health", "published", "image", "uptime"):
        table.add_column(col)
    for st in servers:
        state = st.state if st.state == "running" else f"[bold red]{st.state}[/]"
        table.add_row(st.server, st.container, state, st.health, st.published or "-", st.image or "-",
                      _human(st.uptime_s))
    out.print(table)
    if expiry is not None:
        days, name = expiry
        warn = " [bold red](renew: lab up --regenerate)[/]" if days < 30 else ""
        out.print(f"  certificates: {days} days until the first expiry ({name}){warn}")


def _human(seconds) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _days_to_expiry(lab_dir: Path):
    from lab import certs

    found = certs.expiries(layout.certs_dir(lab_dir))
    if not found:
        return None
    name, when = min(found.items(), key=lambda kv: kv[1])
    return (when - _now()).days, name


# --------------------------------------------------------------------------- status, logs, doctor, render


@app.command()
@handles_errors
def status(
    directory: DirOpt = None,
    name: NameOpt = None,
    all_labs: Annotated[bool, typer.Option("--all", help="Every lab on this Docker engine, found by label.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Data on stdout as JSON.")] = False,
):
    """Show the lab's servers: container, state, TLS health, address, image, uptime; certificate expiry."""
    from dataclasses import asdict

    from lab import runtime, settings

    client = runtime.connect()
    out = _out_console()
    if all_labs:
        rows = runtime.all_labs(client)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich import box
        from rich.table import Table

        table = Table(title=f"{len(rows)} lab(s) on this Docker engine", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("lab", "containers", "published", "directory"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], ", ".join(f"{k} {v}" for k, v in r["containers"].items()),
                          ", ".join(r["published"]), r["dir"])
        out.print(table)
        return
    lab_dir = _lab_dir(directory, name)
    saved = settings.load_saved(lab_dir) if lab_dir.is_dir() else {}
    s = settings.resolve(lab_dir, {"name": name}) if saved else settings.validate(
        settings.Settings(name=_lab_name(lab_dir, name, client)))
    servers = runtime.status(client, s.name, layout.certs_dir(lab_dir) / layout.SERVER_CA_CRT)
    if as_json:
        expiry = _days_to_expiry(lab_dir) if lab_dir.is_dir() else None
        typer.echo(json.dumps({"name": s.name, "dir": str(lab_dir), "servers": [asdict(x) for x in servers],
                               "certificates_days_left": expiry[0] if expiry else None}, indent=2))
    else:
        _print_status(out, s, servers, lab_dir if lab_dir.is_dir() else None)
    if any(x.state != "running" for x in servers):
        raise typer.Exit(1)


@app.command()
@handles_errors
def logs(
    server: Annotated[Optional[str], typer.Argument(help="tls or mtls [default: both].", show_default=False)] = None,
    directory: DirOpt = None,
    name: NameOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end to start with.")] = 50,
):
    """nginx's access and error logs: TLS version, cipher, client certificate subject and verdict per request."""
    import queue
    import threading

    from lab import runtime

    if server is not None and server not in layout.SERVERS:
        raise UsageError(f"unknown server {server!r}: use tls or mtls (or nothing for both)")
    lab_dir = _lab_dir(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    servers = [server] if server else list(layout.SERVERS)
    for srv in servers:
        runtime.server_container(client, lab_name, srv)  # a clear error before any output
    if not follow:
        for srv in servers:
            for line in runtime.logs(client, lab_name, srv, tail=tail):
                typer.echo(f"[{srv}] {line}" if len(servers) > 1 else line)
        return
    lines: queue.Queue = queue.Queue()

    def pump(srv):
        for line in runtime.logs(client, lab_name, srv, tail=tail, follow=True):
            lines.put(f"[{srv}] {line}" if len(servers) > 1 else line)
        lines.put(None)

    for srv in servers:
        threading.Thread(target=pump, args=(srv,), daemon=True).start()
    ended = 0
    while ended < len(servers):
        line = lines.get()
        if line is None:
            ended += 1
        else:
            typer.echo(line)


@app.command()
@handles_errors
def doctor(
    directory: DirOpt = None,
    name: NameOpt = None,
    tls_port: TlsPortOpt = None,
    mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None,
    bind: BindOpt = None,
    image: ImageOpt = None,
    hours: Annotated[float, typer.Option("--hours", help="Certificates must stay valid this many hours (the workshop).")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Data on stdout as JSON.")] = False,
):
    """Preflight: everything `lab up` needs, a ✓/✗ line each, and the fix for each ✗."""
    from lab import doctor as doc

    lab_dir = _lab_dir(directory, name)
    s = _settings(lab_dir, name, tls_port, mtls_port, port_offset, bind, image, None, None)
    checks = doc.run(lab_dir, s, hours=hours)
    blocked = [c for c in checks if not c.ok and c.blocking]
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        out = _out_console()
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
            out.print(f"{mark} {c.name}: {c.detail}")
            if not c.ok and c.fix:
                out.print(f"    fix: {c.fix}", markup=False)
        out.print(f"{len(checks) - len(blocked)} ok, {len(blocked)} blocking lab up", markup=False)
    if blocked:
        raise typer.Exit(1)


@app.command()
@handles_errors
def render(
    directory: DirOpt = None,
    name: NameOpt = None,
    tls_port: TlsPortOpt = None,
    mtls_port: MtlsPortOpt = None,
    port_offset: PortOffsetOpt = None,
    bind: BindOpt = None,
    image: ImageOpt = None,
    san: SanOpt = None,
    days: DaysOpt = None,
    regenerate: RegenerateOpt = False,
):
    """Write the lab directory (certificates, nginx configs, compose file) without starting anything."""
    lab_dir = _lab_dir(directory, name)
    s = _settings(lab_dir, name, tls_port, mtls_port, port_offset, bind, image, san, days)
    cert_result, rendered, _ = _build(lab_dir, s, regenerate)
    out = _out_console()
    out.print(f"[green]✓[/] lab [bold]{s.name}[/] rendered into {lab_dir}/ (certificates "
              f"{'made now' if cert_result.generated else 'reused'}); nothing started")
    _say_dropped(out, cert_result)
    for path in rendered.files:
        out.print(f"  {path}", markup=False)
    out.print("Run it yourself:", markup=False)
    out.print(f"  cd {lab_dir} && docker compose up -d     # or: lab up{_dir_args(directory, lab_dir, name)}",
              markup=False)


# --------------------------------------------------------------------------- students

client_app = typer.Typer(help="A certificate for every student: add, list, revoke (live, without downtime).",
                         no_args_is_help=True)
app.add_typer(client_app, name="client")


def _student_host(s) -> str:
    """The name students use for the instructor's machine: the first extra DNS name, else localhost."""
    return next((x.split(":", 1)[1] for x in s.sans if x.startswith("DNS:")), "localhost")


@client_app.command("add")
@handles_errors
def client_add(
    names: Annotated[Optional[list[str]], typer.Argument(help="Student names.", show_default=False)] = None,
    directory: DirOpt = None,
    name: NameOpt = None,
    from_file: Annotated[Optional[Path], typer.Option("--from-file", help="A class list: one name a line.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-issue an existing student's certificate (the old one is revoked).")] = False,
    legacy_p12: Annotated[bool, typer.Option("--legacy-p12", help="PKCS#12 with the old algorithms older macOS/iOS need.")] = False,
):
    """Issue a client certificate per student: clients/NAME/ with .crt, .key, a password-protected .p12, README."""
    from lab import clients
    from lab.locking import lab_lock

    lab_dir = _lab_dir(directory, name)
    s = _saved_settings(lab_dir, name)
    wanted = list(names or []) + (clients.read_roster(from_file) if from_file else [])
    if not wanted:
        raise UsageError("no student names: give NAME… or --from-file FILE")
    with lab_lock(s.name), _err_console().status("issuing…"):
        issued = clients.add(lab_dir, s, wanted, force=force, legacy_p12=legacy_p12, host=_student_host(s))
        if force:  # a re-issued student's old certificate was revoked: have nginx use the new CRL
            _reload_quietly(s.name)
    out = _out_console()
    for i in issued:
        out.print(f"[green]✓[/] {i.name}: {i.directory}/ (serial {i.serial}, valid until {i.not_after:%Y-%m-%d})")
        out.print(f"    p12 password: {i.password}   (saved in {i.directory / (i.name + '.p12.password')})", markup=False)
    out.print(f"Try: lab verify --as {issued[0].name}{_dir_args(directory, lab_dir, name)}", markup=False)


def _reload_quietly(lab_name: str) -> bool:
    """Reload the mTLS server if the lab runs; False when it does not (or no engine answers)."""
    from lab import runtime
    from lab.errors import DockerUnavailable

    try:
        client = runtime.connect()
    except DockerUnavailable:
        return False
    return runtime.reload(client, lab_name, "mtls")


@client_app.command("list")
@handles_errors
def client_list(
    directory: DirOpt = None,
    name: NameOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Data on stdout as JSON.")] = False,
):
    """Every student: name, serial, expiry, status (valid / revoked / expired)."""
    from lab import clients

    lab_dir = _lab_dir(directory, name)
    _saved_settings(lab_dir, name)
    found = clients.list_clients(lab_dir)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(title=f"{len(found)} student(s)", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("name", "serial", "valid until", "status"):
        table.add_column(col)
    for c in found:
        status = {"valid": "[green]valid[/]", "revoked": "[bold red]revoked[/]"}.get(c.status, f"[yellow]{c.status}[/]")
        table.add_row(c.name, c.serial, f"{c.not_after:%Y-%m-%d}", status)
    _out_console().print(table)


@client_app.command("revoke")
@handles_errors
def client_revoke(
    student: Annotated[str, typer.Argument(help="Student name.")],
    directory: DirOpt = None,
    name: NameOpt = None,
):
    """Revoke a student's certificate; the running mTLS server enforces it at once, without downtime."""
    from lab import clients, verify
    from lab.locking import lab_lock

    lab_dir = _lab_dir(directory, name)
    s = _saved_settings(lab_dir, name)
    with lab_lock(s.name):
        revoked = clients.revoke(lab_dir, student)
        reloaded = _reload_quietly(s.name)
    out = _out_console()
    out.print(f"[green]✓[/] revoked {student} (serial {revoked.serial}); the CRL is renewed")
    if not reloaded:
        out.print("  the lab is not running: the next `lab up` uses the new CRL", markup=False)
        return
    # nginx reloads in the background: wait (briefly) until a request with the
    # revoked certificate is refused, so "the very next request" really is.
    sc = verify.pick(verify.scenarios(lab_dir), ["revoked"])[0]
    deadline = time.monotonic() + 10
    while True:
        result = verify.run(lab_dir, s, only=["revoked"])[0]
        if result.passed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not result.passed:
        raise LabError(f"nginx reloaded but still does not refuse {student}: {result.observed}",
                       hint="lab logs mtls shows what the server saw")
    out.print(f"  the mTLS server reloaded without downtime and now refuses {student}: {result.observed}", markup=False)
    out.print(f"  see it: {verify.curl_command(sc, lab_dir, s)}", markup=False)


@app.command("certs")
@handles_errors
def certs_cmd(
    directory: DirOpt = None,
    name: NameOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Data on stdout as JSON.")] = False,
):
    """The lab's whole PKI: subject, issuer, serial, names, usages, validity, SHA-256 fingerprint of each certificate."""
    from lab import clients

    lab_dir = _lab_dir(directory, name)
    _saved_settings(lab_dir, name)
    infos = clients.pki(lab_dir)
    soon = [i for i in infos if 0 <= i.days_left < 30 and not i.file.startswith(layout.DEMO_DIR)]
    if as_json:
        typer.echo(json.dumps([i.to_dict() for i in infos], indent=2))
    else:
        out = _out_console()
        out.print(f"PKI of {lab_dir}/ ({len(infos)} certificates)", markup=False)
        for i in infos:
            left = f"[bold red]{i.days_left} days left[/]" if i.days_left < 30 else f"{i.days_left} days left"
            out.print(f"\n[bold]{i.file}[/]")
            for label, value in (("subject", i.subject), ("issuer", i.issuer), ("serial", i.serial),
                                 ("names", ", ".join(i.sans)), ("key usage", ", ".join(i.key_usage)),
                                 ("ext. key usage", ", ".join(i.extended_key_usage)),
                                 ("valid", f"{i.not_before[:16]} → {i.not_after[:16]} UTC"), ("sha-256", i.sha256)):
                if value:
                    out.print(f"  {label:<15} {value}", markup=False)
            out.print(f"  {'':<15} {left}")
    for i in soon:
        _err_console().print(f"[yellow]warning:[/] {i.file} expires in {i.days_left} days: lab up --regenerate")


# --------------------------------------------------------------------------- images

image_app = typer.Typer(help="The nginx image, for rooms with no (or a rate-limited) registry: pull, save, load.",
                        no_args_is_help=True)
app.add_typer(image_app, name="image")


def _image_for(directory, name, image) -> str:
    from lab import settings

    lab_dir = _lab_dir(directory, name)
    return settings.resolve(lab_dir, {"name": name, "image": image}).image


@image_app.command("pull")
@handles_errors
def image_pull(directory: DirOpt = None, name: NameOpt = None, image: ImageOpt = None):
    """Pull the lab's image from its registry (with progress), if it is not here yet."""
    from lab import runtime

    img = _image_for(directory, name, image)
    client = runtime.connect()
    with _err_console().status(f"pulling {img}…") as st:
        pulled = runtime.ensure_image(client, img, progress=lambda m: st.update(m))
    _out_console().print(f"[green]✓[/] {img} {'pulled' if pulled else 'was already here'}")


@image_app.command("save")
@handles_errors
def image_save(
    file: Annotated[Path, typer.Argument(help="Tar file to write (hand it out on a USB stick).")],
    directory: DirOpt = None, name: NameOpt = None, image: ImageOpt = None,
):
    """Save the lab's image to a tar file (docker save), streamed."""
    from lab import runtime

    img = _image_for(directory, name, image)
    client = runtime.connect()
    with _err_console().status(f"saving {img}…") as st:
        size = runtime.save_image(client, img, file, progress=lambda m: st.update(m))
    _out_console().print(f"[green]✓[/] saved {img} to {file} ({size / 1e6:.1f} MB); on each laptop: lab image load {file}")


@image_app.command("load")
@handles_errors
def image_load(file: Annotated[Path, typer.Argument(help="Tar file made by `lab image save`.")]):
    """Load an image from a tar file (docker load), streamed: no registry needed."""
    from lab import runtime

    client = runtime.connect()
    with _err_console().status(f"loading {file}…") as st:
        tags = runtime.load_image(client, file, progress=lambda m: st.update(m))
    _out_console().print(f"[green]✓[/] loaded {', '.join(tags) or 'an untagged image'} from {file}")


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
    as_student: AsOpt = None,
):
    """Check both servers: what must succeed succeeds, what must fail fails, and why."""
    from lab import verify

    lab_dir = _lab_dir(directory, name)
    verify.check_names(scenario or [])  # a misspelt name fails before the lab is read
    s = _saved_settings(lab_dir, name)
    results = verify.run(lab_dir, s, only=scenario, host=_host(host), as_student=as_student)
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        _print_results(results, show_commands)
    if failed:
        from lab.errors import VerificationFailed

        hint = ""
        if any(r.detail.get("kind") == "connect-error" for r in failed):
            hint = _not_running(s.name) or "is the lab running? `lab up` starts it"
        raise VerificationFailed(f"{len(failed)} of {len(results)} scenarios did not behave as expected: "
                                 + ", ".join(r.scenario for r in failed), hint=hint)


def _not_running(lab_name: str) -> str:
    """Which of the lab's containers are not running, when the engine can tell."""
    from lab import runtime

    try:
        servers = runtime.status(runtime.connect(), lab_name, None)
    except LabError:
        return ""
    if all(st.state == "missing" for st in servers):
        return f"lab {lab_name} is not running: `lab up` starts it"
    down = [f"{st.container} is {st.state}" for st in servers if st.state != "running"]
    return ("; ".join(down) + ": `lab up` repairs it") if down else ""


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
    as_student: AsOpt = None,
):
    """Print the curl command that shows one scenario, to copy and paste."""
    from lab import verify

    verify.check_names([scenario])
    lab_dir = _lab_dir(directory, name)
    s = _saved_settings(lab_dir, name)
    sc = verify.pick(verify.scenarios(lab_dir, as_student), [scenario])[0]
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
    from lab import runtime
    from lab.locking import lab_lock

    lab_dir = _lab_dir(directory, name)
    client = runtime.connect()
    lab_name = _lab_name(lab_dir, name, client)
    with lab_lock(lab_name):
        result = runtime.down(lab_name, client=client)
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
