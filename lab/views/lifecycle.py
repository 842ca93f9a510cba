"""What up, render, down, status, logs and doctor show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.core import layout
from lab.views.console import emit_json, escape, human, new_table, ok, out_console, projector, warn

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from lab.app.doctor import Check
    from lab.app.lifecycle import BuildReport, DownReport, StatusReport, UpReport
    from lab.app.selection import Expiry
    from lab.core.layout import Server
    from lab.core.settings import Settings
    from lab.engine.loaded import Kind, LoadedState
    from lab.engine.runtime import LabSummary, ServerStatus


def status_table(name: str, lab_dir: Path | None, servers: list[ServerStatus], expiry: Expiry | None,
                 loaded: dict[Server, dict[Kind, LoadedState] | None] | None = None,
                 files: dict[Server, dict[Kind, str]] | None = None, turned_off: list[str] | None = None) -> None:
    out = out_console()
    title = f"lab {name}" + (f"  ({escape(lab_dir)}/)" if lab_dir else "")
    if projector(out):
        # 100 columns or fewer: the facts students need (the port above all) whole, one line a server.
        keep = {"no_wrap": True}
        table = new_table(title, [("server", keep), ("state", keep), ("TLS", keep), ("published", keep),
                                  ("uptime", keep)])
        for st in servers:
            state = st.state if st.state == "running" else f"[bold red]{st.state}[/]"
            tls = st.health.removeprefix("answers TLS (").removesuffix(")") if st.health.startswith("answers") \
                else st.health
            table.add_row(st.server, state, escape(tls), st.published or "-", human(st.uptime_s))
        out.print(table)
        out.print(f"  containers {', '.join(st.container for st in servers)}; image "
                  f"{next((st.image for st in servers if st.image), '-')}", markup=False)
    else:
        table = new_table(title, ("server", "container", "state", "health", "published", "image", "uptime"))
        for st in servers:
            state = st.state if st.state == "running" else f"[bold red]{st.state}[/]"
            table.add_row(st.server, st.container, state, st.health, st.published or "-", st.image or "-",
                          human(st.uptime_s))
        out.print(table)
    stopped = [st for st in servers if st.state != "running"]
    if stopped and all(st.state == "missing" for st in servers):
        out.print("  [bold red]not running[/]: lab up starts it")
    else:
        for st in stopped:
            out.print(f"  [bold red]{st.server}: {st.state}[/]: lab up repairs it (and keeps your edits)")
    if expiry is not None:
        warn_ = " [bold red](renew: lab up --regenerate)[/]" if expiry.soon else ""
        out.print(f"  certificates: {expiry.days} days until the first expiry ({expiry.file}){warn_}")
    for server, states in (loaded or {}).items():
        for kind, state in (states or {}).items():
            what = _LOADED[kind].format(file=(files or {}).get(server, {}).get(kind, kind))
            if state == "older":
                out.print(f"  [bold red]{server}: runs an older {what} than the lab directory[/]: "
                          f"{_LOADED_FIX[kind]}")
    if loaded and all(states is not None and all(v == "current" for v in states.values())
                      for states in loaded.values()) and not turned_off:
        out.print("  configuration: both servers run the files in the lab directory (and the mTLS server its "
                  "revocation list)")


_LOADED = {"config": "{file}", "crl": "revocation list ({file})", "names": "list of students' names ({file})",
           "access": "access rules ({file})"}


_LOADED_FIX = {"config": "lab reload loads it (nginx -t first)",
               "crl": "a revoked student may still get in; lab up (or lab reload) loads it",
               "names": "a new student is greeted by the name as nginx escapes it; lab up (or lab reload) loads it",
               "access": "a lab allow or lab deny is not in force yet; lab up (or lab reload) loads it"}


def status(report: StatusReport) -> None:
    status_table(report.name, report.dir, report.servers, report.expiry, report.loaded, report.files,
                 report.turned_off)
    for what in report.turned_off:
        out_console().print(f"  [bold red]not the lesson: {escape(what)}[/] (lab diff shows it; lab reset puts it back)")
    if report.unlisted:
        out_console().print(f"  [bold red]revocation list: misses {report.unlisted} certificate(s) the client CA "
                            "revoked[/]: those students still get in; lab up makes it anew and reloads the server")
    student_urls(report.urls)


def student_urls(urls: list[str]) -> None:
    if urls:
        out_console().print("  students connect to: " + ", ".join(urls), markup=False)


def status_json(report: StatusReport) -> None:
    emit_json({"name": report.name, "dir": str(report.dir or ""), "servers": report.servers,
               "certificates_days_left": report.expiry.days if report.expiry else None,
               "loaded": report.loaded, "crl_unlisted": report.unlisted, "student_urls": report.urls})


def all_labs(rows: list[LabSummary]) -> None:
    table = new_table(f"{len(rows)} lab(s) on this Docker engine", ("lab", "containers", "published", "directory"))
    for r in rows:
        table.add_row(r.name, ", ".join(f"{k} {v}" for k, v in r.containers.items()), ", ".join(r.published),
                      escape(r.dir))
    out_console().print(table)


def _certs_line(report: BuildReport) -> None:
    out = out_console()
    said = "made now" if report.certs.generated else "reused"
    names = ", ".join(x.split(":", 1)[1] for x in report.certs.sans)
    out.print(f"  certificates  {said}; server certificate for {names}", markup=False)
    if report.certs.server_renewed:
        out.print("  [yellow]renewed[/]       the server CA and certificate, for the new names; students keep their "
                  "certificates, but must trust the new certs/server-ca.crt (their folders have it)")
    for rel in report.certs.replaced:
        out.print(f"  [yellow]kept[/]          your {rel} (put in by hand; every key matches its certificate; "
                  "lab up --regenerate makes a new set)")
    if report.certs.dropped_students:
        names = " ".join(report.certs.dropped_students)
        out.print(f"  [yellow]students[/]      new CAs: the certificates of {names} were signed by the old client "
                  f"CA and were removed; issue new ones: lab client add {names}")


def up(report: UpReport, hints: list[tuple[str, str]]) -> None:
    out = out_console()
    state = ("is up" if report.changed else "was already up: brought up to its files without downtime"
             if report.reloaded else "was already up (nothing to do)")
    ok("lab ", (report.lab.name, "bold"), f" {state} ({report.seconds:.1f} s)")
    out.print(f"  directory     {report.lab.dir}/  (certs/, demo-certs/, nginx-tls/, nginx-mtls/, "
              f"{layout.COMPOSE_FILE})", markup=False)
    _certs_line(report)
    if report.pulled:
        out.print(f"  image         {report.lab.settings.image} pulled", markup=False)
    _kept(report.rendered.kept)
    for r in report.reloaded:
        out.print(f"  reloaded      the {r.server} server, without downtime: it had an older "
                  f"{', '.join(r.files)}", markup=False)
    status_table(report.lab.name, report.lab.dir, report.servers, report.expiry)
    student_urls(report.lab.settings.student_urls())
    exposed(report.lab.settings)
    out.print("Try next:")
    width = max(len(cmd) for cmd, why in hints if why) + 7
    for cmd, why in hints:
        out.print(f"  {cmd.ljust(width)}# {why}" if why else f"  {cmd}", markup=False)


def _kept(kept: tuple[str, ...]) -> None:
    out = out_console()
    for rel in kept:
        out.print(f"  [yellow]kept[/]          your edit of {rel} (lab diff shows it; lab reset {rel} goes back "
                  "to the lesson)")


def render(report: BuildReport) -> None:
    out = out_console()
    ok("lab ", (report.lab.name, "bold"), f" rendered into {report.lab.dir}/ (certificates "
        f"{'made now' if report.certs.generated else 'reused'}); nothing started")
    _certs_line(report)
    _kept(report.rendered.kept)
    for path in report.rendered.files:
        out.print(f"  {path}", markup=False)
    out.print("Run it yourself:", markup=False)
    out.print(f"  cd {report.lab.dir} && docker compose up -d     # or: lab up{report.lab.selector}", markup=False)


def down(report: DownReport) -> None:
    removed = [f"container {c}" for c in report.containers] + [f"network {n}" for n in report.networks]
    if removed:
        ok("lab ", (report.name, "bold"), " is down: removed " + ", ".join(removed))
    else:
        ok("lab ", (report.name, "bold"), " is down: nothing of it was running")
    if report.deleted is not None:
        out_console().print(f"  deleted {report.deleted}/", markup=False)


def logs(pairs: Iterable[tuple[str, str]], both: bool) -> None:
    import typer

    for server, line in pairs:
        typer.echo(f"[{server}] {line}" if both else line)


def doctor(checks: list[Check]) -> None:
    out = out_console()
    blocked = [c for c in checks if not c.ok and c.blocking]
    from lab.views.console import projector

    if projector(out):        # wrapped by words under each check, never cut (a long fix reads as prose)
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for c in checks:
            grid.add_row("[green]✓[/]" if c.ok else "[bold red]✗[/]", f"{escape(c.name)}: {escape(c.detail)}"
                         + (f"\n[dim]fix:[/] {escape(c.fix)}" if not c.ok and c.fix else ""))
        out.print(grid)
    else:
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
            out.print(f"{mark} {escape(c.name)}: {escape(c.detail)}")
            if not c.ok and c.fix:
                out.print(f"    fix: {c.fix}", markup=False)
    other = sum(not c.ok and not c.blocking for c in checks)
    out.print(f"{sum(c.ok for c in checks)} ok, " + (f"{other} to see to (lab up works), " if other else "")
              + f"{len(blocked)} blocking lab up", markup=False)


def exposed(settings: Settings) -> None:
    """Published beyond loopback: say what anyone on the network can now reach."""
    import ipaddress

    if ipaddress.ip_address(settings.bind).is_loopback:
        return
    where = "every address of this machine" if settings.bind in ("0.0.0.0", "::") else settings.bind
    warn(f"ports {settings.tls_port} and {settings.mtls_port} are published on {where}: anyone on this "
         f"machine's networks can reach both servers (the TLS one without a client certificate). "
         f"`lab down` closes them; --bind 127.0.0.1 keeps them on this machine.")
