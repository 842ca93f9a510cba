"""Everything `lab` shows: consoles, tables, JSON, hints, durations, errors.

Stage modules and lab/session.py return data; lab/cli.py hands it here.
Results go to stdout (a table, or with --json only data); progress, warnings
and errors go to stderr, so `lab … --json | jq` always reads clean data.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from lab.core import layout


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout_console(**options):
    """A rich console on stdout for which a closed pipe is no error (`lab up | head -1`:
    the reader has what it wanted; rich's default exits 1)."""
    from rich.console import Console

    class _Stdout(Console):
        def on_broken_pipe(self) -> None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            raise SystemExit(0)

    return _Stdout(highlight=False, **options)


def out_console():
    console = _stdout_console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or saved for a handout: don't squeeze the tables into 80 columns.
        console.width = 160
    return console


def _table(title: str, columns, **options):
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **options)
    for col in columns:
        if isinstance(col, tuple):
            table.add_column(col[0], **col[1])
        else:
            table.add_column(col)
    return table


def _plain(value):
    if is_dataclass(value):
        return _plain(value.to_dict() if hasattr(value, "to_dict") else asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(data) -> None:
    """Data only, on stdout."""
    import typer

    typer.echo(json.dumps(_plain(data), indent=2))


def error(e) -> None:
    """A LabError as one line (and its details and fix under it), on stderr."""
    err = err_console()
    err.print(f"[bold red]ERROR:[/] {_escape(str(e))}", markup=True, soft_wrap=True)   # paths may hold [ ]
    if e.details:
        for line in e.details.splitlines():
            err.print(f"  | {line}", markup=False, soft_wrap=True)
    if e.hint:
        err.print(f"  fix: {e.hint}", markup=False, soft_wrap=True)


def note(text: str) -> None:
    err_console().print(text, markup=False)


def warn(text: str) -> None:
    err_console().print(f"[yellow]warning:[/] {_escape(text)}")


@contextlib.contextmanager
def progress(first: str = "working…"):
    """A spinner on stderr; yields the callback the use cases report progress with.
    No terminal (a pipe, CI, a log): no spinner to draw, so none is made."""
    console = err_console()
    if not console.is_terminal:
        yield lambda _msg: None
        return
    with console.status(first) as status:
        yield lambda msg: status.update(msg)


def human(seconds) -> str:
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


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def _ok(*parts) -> None:
    """✓ and a line of plain text (paths and names are never read as markup); (text, style) parts are styled."""
    from rich.text import Text

    out_console().print(Text.assemble(("✓", "green"), " ", *parts))


# --------------------------------------------------------------------------- up, render, down, status


def status_table(name: str, lab_dir, servers, expiry, loaded=None) -> None:
    out = out_console()
    table = _table(f"lab {name}" + (f"  ({_escape(lab_dir)}/)" if lab_dir else ""),
                   ("server", "container", "state", "health", "published", "image", "uptime"))
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
            what = _LOADED[kind].format(file=_loaded_file(server, kind))
            if state == "older":
                out.print(f"  [bold red]{server}: runs an older {what} than the lab directory[/]: "
                          f"{_LOADED_FIX[kind]}")
    if loaded and all(states is not None and all(v == "current" for v in states.values())
                      for states in loaded.values()):
        out.print("  configuration: both servers run the files in the lab directory (and the mTLS server its "
                  "revocation list)")


_LOADED = {"config": "{file}", "crl": "revocation list ({file})"}
_LOADED_FIX = {"config": "lab reload loads it (nginx -t first)",
               "crl": "a revoked student may still get in; lab up (or lab reload) loads it"}


def _loaded_file(server: str, kind: str) -> str:
    from lab.engine import loaded

    return loaded.files(server)[kind]


def status(report) -> None:
    status_table(report.name, report.dir, report.servers, report.expiry, report.loaded)
    student_urls(report.urls)


def student_urls(urls) -> None:
    if urls:
        out_console().print("  students connect to: " + ", ".join(urls), markup=False)


def status_json(report) -> None:
    emit_json({"name": report.name, "dir": str(report.dir or ""), "servers": report.servers,
               "certificates_days_left": report.expiry.days if report.expiry else None,
               "loaded": report.loaded, "student_urls": report.urls})


def all_labs(rows) -> None:
    table = _table(f"{len(rows)} lab(s) on this Docker engine", ("lab", "containers", "published", "directory"))
    for r in rows:
        table.add_row(r.name, ", ".join(f"{k} {v}" for k, v in r.containers.items()), ", ".join(r.published),
                      _escape(r.dir))
    out_console().print(table)


def _certs_line(report) -> None:
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


def up(report, hints) -> None:
    out = out_console()
    state = "is up" if report.changed else "was already up (nothing to do)"
    _ok("lab ", (report.lab.name, "bold"), f" {state} ({report.seconds:.1f} s)")
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


def _kept(kept) -> None:
    out = out_console()
    for rel in kept:
        out.print(f"  [yellow]kept[/]          your edit of {rel} (lab diff shows it; lab reset {rel} goes back "
                  "to the lesson)")


def render(report) -> None:
    out = out_console()
    _ok("lab ", (report.lab.name, "bold"), f" rendered into {report.lab.dir}/ (certificates "
        f"{'made now' if report.certs.generated else 'reused'}); nothing started")
    _certs_line(report)
    _kept(report.rendered.kept)
    for path in report.rendered.files:
        out.print(f"  {path}", markup=False)
    out.print("Run it yourself:", markup=False)
    out.print(f"  cd {report.lab.dir} && docker compose up -d     # or: lab up{report.lab.selector}", markup=False)


def down(report) -> None:
    removed = [f"container {c}" for c in report.containers] + [f"network {n}" for n in report.networks]
    if removed:
        _ok("lab ", (report.name, "bold"), " is down: removed " + ", ".join(removed))
    else:
        _ok("lab ", (report.name, "bold"), " is down: nothing of it was running")
    if report.deleted is not None:
        out_console().print(f"  deleted {report.deleted}/", markup=False)


def logs(pairs, both: bool) -> None:
    import typer

    for server, line in pairs:
        typer.echo(f"[{server}] {line}" if both else line)


def doctor(checks) -> None:
    out = out_console()
    blocked = [c for c in checks if not c.ok and c.blocking]
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
        out.print(f"{mark} {_escape(c.name)}: {_escape(c.detail)}")
        if not c.ok and c.fix:
            out.print(f"    fix: {c.fix}", markup=False)
    other = sum(not c.ok and not c.blocking for c in checks)
    out.print(f"{sum(c.ok for c in checks)} ok, " + (f"{other} to see to (lab up works), " if other else "")
              + f"{len(blocked)} blocking lab up", markup=False)


# --------------------------------------------------------------------------- verify


def verify(results, show_commands: bool) -> None:
    out = out_console()
    for server, title in (("tls", "TLS server"), ("mtls", "mTLS server")):
        rows = [r for r in results if r.server == server]
        if not rows:
            continue
        table = _table(f"{title} (port {rows[0].observation.port})",
                       [("", {"no_wrap": True}), ("scenario", {"no_wrap": True}), "what it shows", "expected",
                        "observed"], show_lines=show_commands, expand=False)
        for r in rows:
            mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
            shows = _escape(r.shows + (f"\n$ {r.curl}" if show_commands else ""))
            observed = _escape(r.observed) + (f"\n[bold]→ {_escape(r.cause)}[/]" if r.cause else "")
            table.add_row(mark, r.scenario, shows, _escape(r.expected), observed)
        out.print(table)
    passed = sum(r.passed for r in results)
    out.print(f"{passed} passed, {len(results) - passed} failed", markup=False)


# --------------------------------------------------------------------------- students, certificates


def issued(report, selector: str, show_passwords: bool = False) -> None:
    """Never a password on screen (a projector shows it to the class) unless asked for."""
    out = out_console()
    for i in report.issued:
        _ok(f"{i.name}: {i.directory}/ (serial {i.serial}, valid until {i.not_after:%Y-%m-%d})")
        if show_passwords:
            out.print(f"    p12 password: {i.password}", markup=False)
    if report.issued:
        out.print(f"  .p12 passwords: in {report.passwords}/ (for you, not the students' folders); "
                  + ("shown above" if show_passwords else "not shown (--show-passwords shows them)"), markup=False)
    if report.skipped:
        out.print(f"  kept: {', '.join(report.skipped)} already had a certificate (--force re-issues)", markup=False)
    first = (report.issued or [None])[0]
    if first is not None:
        out.print(f"Try: lab verify --as {first.name}{selector}", markup=False)


def students(found) -> None:
    table = _table(f"{len(found)} student(s)", ("name", "serial", "valid until", "status"))
    for c in found:
        state = {"valid": "[green]valid[/]", "revoked": "[bold red]revoked[/]"}.get(c.status, f"[yellow]{c.status}[/]")
        table.add_row(c.name, c.serial, f"{c.not_after:%Y-%m-%d}" if c.not_after else "-", state)
    out_console().print(table)
    for c in found:
        if c.status == "folder missing":
            warn(c.problem)
        elif c.problem:
            warn(f"{c.name}: {c.problem}: lab client add --force {c.name} issues a new one")


def revoked(report) -> None:
    out = out_console()
    student = report.student
    _ok(f"revoked {student.name} (serial {student.serial}); the CRL is renewed")
    if not report.enforced:
        out.print("  the lab is not running: the next `lab up` uses the new CRL", markup=False)
        return
    if not report.observed:
        out.print(f"  the mTLS server reloaded without downtime the CRL that lists it; no request shows it here: "
                  f"{student.name}'s key is not in this lab", markup=False)
        return
    out.print(f"  the mTLS server reloaded without downtime and now refuses {student.name}: {report.observed}",
              markup=False)
    out.print(f"  see it: {report.curl}", markup=False)


def pki(lab_dir: Path, infos) -> None:
    out = out_console()
    out.print(f"PKI of {lab_dir}/ ({len(infos)} certificates)", markup=False)
    for i in infos:
        if i.problem:
            out.print(f"\n[bold]{_escape(i.file)}[/]\n  [bold red]{_escape(i.problem)}[/]")
            continue
        soon = i.days_left < layout.EXPIRY_WARN_DAYS
        left = f"[bold red]{i.days_left} days left[/]" if soon else f"{i.days_left} days left"
        out.print(f"\n[bold]{_escape(i.file)}[/]")
        for label, value in (("subject", i.subject), ("issuer", i.issuer), ("serial", i.serial),
                             ("names", ", ".join(i.sans)), ("key usage", ", ".join(i.key_usage)),
                             ("ext. key usage", ", ".join(i.extended_key_usage)),
                             ("may vouch for", ", ".join(i.name_constraints)),
                             ("valid", f"{i.not_before[:16]} → {i.not_after[:16]} UTC"), ("sha-256", i.sha256)):
            if value:
                out.print(f"  {label:<15} {value}", markup=False)
        out.print(f"  {'':<15} {left}")


def expiry_warnings(infos) -> None:
    for i in infos:
        if i.problem:
            warn(f"{i.file}: {i.problem}")
        elif 0 <= i.days_left < layout.EXPIRY_WARN_DAYS and not i.file.startswith(layout.DEMO_DIR):
            warn(f"{i.file} expires in {i.days_left} days: lab up --regenerate")


def exposed(settings) -> None:
    """Published beyond loopback: say what anyone on the network can now reach."""
    import ipaddress

    if ipaddress.ip_address(settings.bind).is_loopback:
        return
    where = "every address of this machine" if settings.bind in ("0.0.0.0", "::") else settings.bind
    warn(f"ports {settings.tls_port} and {settings.mtls_port} are published on {where}: anyone on this "
         f"machine's networks can reach both servers (the TLS one without a client certificate). "
         f"`lab down` closes them; --bind 127.0.0.1 keeps them on this machine.")


# --------------------------------------------------------------------------- images


def image_pulled(image: str, pulled: bool) -> None:
    _ok(f"{image} {'pulled' if pulled else 'was already here'}")


def image_saved(image: str, file: Path, size: int) -> None:
    _ok(f"saved {image} to {file} ({size / 1e6:.1f} MB); on each laptop: lab image load {file}")


def image_loaded(file: Path, tags) -> None:
    _ok(f"loaded {', '.join(tags) or 'an untagged image'} from {file}")


# --------------------------------------------------------------------------- hands-on


def diff(found) -> None:
    import typer

    for e in found:
        typer.echo(e.diff, nl=not e.diff.endswith("\n"))
    if not found:
        err_console().print("no edits: every rendered file is as the lesson has it", markup=False)


def reloaded(done) -> None:
    for r in done:
        what = f"it now runs your {', '.join(r.files)}" if r.files else "nothing had changed since its last load"
        _ok(f"{r.server} server reloaded without downtime (nginx -t passed; no old worker left): {what}")


def reset(report) -> None:
    out = out_console()
    if not report.restored:
        _ok("nothing to reset: every rendered file is as the lesson has it")
    for rel, backup in report.restored:
        _ok(f"{rel} is the lesson's again; your edited copy is kept as {backup.name}")
    for r in report.reloaded:
        out.print(f"  the {r.server} server reloaded: it serves the lesson's {', '.join(r.files)}", markup=False)


# --------------------------------------------------------------------------- exercises


def exercises(found) -> None:
    table = _table(f"{len(found)} exercise(s)   (lab exercise start ID)", ("id", "title", "checked with"))
    for ex in found:
        table.add_row(ex.id, _escape(ex.title), ", ".join(c.label for c in ex.checks))
    out_console().print(table)


def _checks(report) -> None:
    out = out_console()
    if report.config_error:
        out.print("[bold red]✗[/] nginx refuses the configuration on disk (the server still serves its previous one):")
        for line in report.config_error.splitlines():
            out.print(f"    {line}", markup=False)
        return
    for r in report.results:
        mark = "[green]✓[/]" if r.passed else "[bold red]✗[/]"
        out.print(f"{mark} {r.scenario}: {_escape(r.observed)}")
        if r.cause:
            out.print(f"    → {r.cause}", markup=False)


def exercise_started(report, selector: str) -> None:
    out = out_console()
    ex = report.exercise
    out.print(f"[bold]Exercise {ex.id}: {_escape(ex.title)}[/]")
    out.print(ex.story, markup=False)
    out.print("\nAs it is now:", markup=False)
    _checks(report)
    out.print(f"\nDiagnose it with lab verify, lab logs, curl and openssl; then: lab exercise check{selector}"
              f"   (stuck? lab exercise hint{selector})", markup=False)


def exercise_hint(ex) -> None:
    out_console().print(f"Hint for {ex.id}: {ex.hint}", markup=False)


def exercise_checked(report) -> None:
    out = out_console()
    _checks(report)
    if report.fixed:
        _ok(f"fixed: {report.exercise.id}")
        out.print(report.exercise.explain, markup=False)
    else:
        failing = [r.scenario for r in report.results if not r.passed] or ["the configuration"]
        out.print(f"[bold red]not fixed yet:[/] {', '.join(failing)} still fail{'s' if len(failing) == 1 else ''}")


def exercise_solution(report, applied: bool) -> None:
    import yaml

    out = out_console()
    ex = report.exercise
    if not applied:
        out.print(f"The reference fix of {ex.id}:", markup=False)
        out.print(yaml.safe_dump(list(ex.solution), sort_keys=False, allow_unicode=True).rstrip(), markup=False)
        out.print(ex.explain, markup=False)
        return
    out.print(f"Applied the reference fix of {ex.id}.", markup=False)
    exercise_checked(report)


def exercise_reset(report) -> None:
    _ok(f"exercise {report.exercise.id} ended: the lab is back to the lesson"
        + (f" ({', '.join(report.restored)} put back)" if report.restored else ""))
    for rel, copy in report.kept:
        out_console().print(f"  your changes to {rel} are kept in {copy.name} beside it", markup=False)


def exercise_status(report, as_json: bool) -> None:
    if as_json:
        emit_json(None if report is None else {"id": report.exercise.id, "title": report.exercise.title,
                                               "fixed": report.fixed})
        return
    if report is None:
        out_console().print("no exercise is running in this lab (lab exercise list)", markup=False)
        return
    state = "[green]fixed[/]" if report.fixed else "[bold red]not fixed yet[/]"
    out_console().print(f"exercise {report.exercise.id} is running: {state}")


# --------------------------------------------------------------------------- the handshake


def _message_details(m) -> str:
    d = m.details
    if m.type == "ClientHello":
        return f"offers {', '.join(d.get('versions') or [])}; asks for {d.get('sni')} (SNI)"
    if m.type == "ServerHello":
        return f"{d.get('version')}, {d.get('cipher_suite')}"
    if m.type == "Certificate" and m.sender == "server":
        return f"{d.get('subject')}, issued by {d.get('issuer')}; names {', '.join(d.get('names') or [])}"
    if m.type == "CertificateRequest":
        cas = d.get("certificate_authorities") or []
        return "send a certificate from: " + ("; ".join(cas) if cas else "(no CA named)")
    if m.type == "Certificate" and m.sender == "client":
        return d["subject"] if d.get("subject") else "empty: the client has no certificate to send"
    if m.type == "CertificateVerify":
        return f"the {m.sender} proves it holds the certificate's private key"
    if m.type == "Finished":
        return f"the {m.sender}'s side of the handshake is done"
    if m.type == "Alert":
        return f"{d.get('level')} {d.get('description')}: sent by the {m.sender}"
    if m.type == "EncryptedExtensions":
        return "from here on, the handshake is encrypted"
    if m.type == "NewSessionTicket":
        return "for resuming later"
    if m.type == "ChangeCipherSpec":
        return m.details.get("note") or "switching to the new keys"
    return ""


def handshake(h, lab_dir) -> None:
    """A two-column sequence diagram: the client on the left, the server on the right."""
    out = out_console()
    kind = "mTLS" if h.server == "mtls" else "TLS"
    out.print(f"[bold]Handshake of scenario {h.scenario}[/]: client → {kind} server at {_escape(h.address)}"
              + (f", {h.tls_version}" if h.tls_version else ""))
    table = _table("", [("", {"no_wrap": True}), ("client", {"no_wrap": True, "justify": "right"}),
                        ("", {"no_wrap": True}), ("server", {"no_wrap": True}), "what it carries"], show_edge=False)
    had_request = any(m.type == "CertificateRequest" for m in h.messages)
    for m in h.messages:
        mark = "[magenta]mTLS[/]" if m.mtls_only else ""
        style = "bold red" if m.type == "Alert" else ("magenta" if m.mtls_only else "")
        name = f"[{style}]{m.type}[/]" if style else m.type
        if m.sender == "client":
            table.add_row(mark, name, "──────────▶", "", _escape(_message_details(m)))
        else:
            table.add_row(mark, "", "◀──────────", name, _escape(_message_details(m)))
        if m.type == "ServerHello" and h.tls_version == "TLSv1.3":
            table.add_row("", "", "[dim]· · · · · ·[/]", "", "[dim]TLS 1.3: everything below is encrypted on the "
                          "wire (certificates included)[/]")
    out.print(table)
    if not had_request and h.server == "tls" and h.tls_version:
        out.print("  No CertificateRequest: plain TLS never asks the client who it is; only the server proves "
                  "its identity.", markup=False)
    if h.tls_version == "TLSv1.2":
        out.print("  TLS 1.2: the certificates (the server's, and the client's) cross the network in clear; "
                  "TLS 1.3 encrypts them.", markup=False)
    if h.failure:
        out.print(f"  [bold red]the client gave up:[/] {_escape(h.failure)}")
    if h.http_status is not None:
        verdict = f"; nginx's verdict on the client certificate: {h.verdict}" if h.verdict else ""
        out.print(f"  then HTTP {h.http_status}{_escape(verdict)}")
    out.print(f"  see it yourself (in {lab_dir}/): {h.command}", markup=False)


def handshake_files(keylog, pcap, address: str) -> None:
    import shlex

    out = out_console()
    if keylog:
        out.print(f"  session keys (NSS key log, like SSLKEYLOGFILE): {keylog}", markup=False)
    if pcap:
        out.print(f"  capture of this one connection: {pcap}", markup=False)
    if keylog and pcap:
        port = address.rsplit(":", 1)[1]
        out.print(f"  decrypted: tshark -r {shlex.quote(str(pcap))} -o {shlex.quote(f'tls.keylog_file:{keylog}')} "
                  f"-d tcp.port=={port},tls -Y tls.handshake -V   "
                  f"(Wireshark: Preferences → Protocols → TLS → (Pre)-Master-Secret log filename)", markup=False)


# --------------------------------------------------------------------------- the demo


def demo_list(steps) -> None:
    import typer

    from lab.teach.demo import titles

    for i, title in enumerate(titles(steps), 1):
        typer.echo(f"{i:>2}. {title}")


def _demo_console():
    """80 columns, high contrast; NO_COLOR is honoured by rich itself."""
    return _stdout_console(width=80, soft_wrap=False)


@contextlib.contextmanager
def _keys_unechoed(interactive: bool):
    """For the whole demo, keys are read one at a time and not echoed (a key pressed while a step
    runs must not print on the projector); the terminal is restored however the demo ends."""
    import sys

    if not interactive:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)     # Ctrl-C still interrupts (ISIG stays on)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _typed_meanwhile() -> str:
    """What was typed while the step ran (read without waiting)."""
    import select
    import sys

    fd, typed = sys.stdin.fileno(), b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        typed += chunk
    return typed.decode(errors="replace").lower()


def _key(auto) -> str:
    """The next key: Enter (next), b, r or q; one keypress on a terminal, a line otherwise; after N s with --auto."""
    import sys
    import time

    if auto is not None:
        time.sleep(auto)
        return ""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return "q" if line == "" else line.strip().lower()[:1]
    ch = os.read(sys.stdin.fileno(), 1).decode(errors="replace")
    return "" if ch in ("\n", "\r", " ") else ch.lower()


def demo_screen(console, sc, run: int = 1) -> None:
    again = f"  (run {run})" if run > 1 else ""     # r shows it did something: the screen may look the same
    console.print(f"[bold black on bright_white] {sc.number}/{sc.total}  {_escape(sc.title)}{again} [/]")
    console.print()
    for line in sc.text:
        console.print(line, markup=False)
    console.print()
    # Lines are already cut to 80 columns (lab/demo.py): rich must not wrap them again.
    for line in sc.commands:
        console.print(f"[bold bright_cyan]{_escape(line)}[/]", soft_wrap=True)
    for line in sc.output:
        console.print(f"  {_escape(line)}", style="bright_white", soft_wrap=True)
    if not sc.seen:
        console.print(f"[bold bright_red]  (expected to see: {_escape(sc.expected)})[/]")


def _departure_lines(d) -> list[str]:
    lines = []
    if d.exercise:
        lines.append(f"exercise {d.exercise} is running in this lab: some steps will not show what they should "
                     f"(lab exercise reset ends it)")
    if d.edited:
        lines.append(f"edited by hand: {', '.join(d.edited)}: the demo shows the lab as it is (lab diff; lab reset)")
    return lines


def demo(steps, start: int, auto, run_step, departures=None) -> None:
    """Show step after step; Enter next, b back, r rerun, q quit (or Ctrl-C): exit 0 either way."""
    import sys

    interactive = auto is None and sys.stdin.isatty()
    with _keys_unechoed(interactive):
        _demo(steps, start, auto, run_step, departures, interactive)


def _demo(steps, start: int, auto, run_step, departures, interactive: bool) -> None:
    console = _demo_console()
    number, run = start, 1
    warnings = _departure_lines(departures) if departures else []
    for line in warnings:       # before the first step: nothing on the projector should surprise the room
        err_console().print(f"[bold yellow]note:[/] {_escape(line)}")
    if warnings and interactive:
        console.print("[dim]Enter: start the demo all the same   q: quit[/]")
        try:
            if _key(auto) == "q":
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            console.print("demo not started")
            return
    try:
        while 1 <= number <= len(steps):
            if interactive:
                console.clear()
            sc = run_step(number)
            # Keys typed while the step ran: a q still quits (once the step is shown); anything else
            # is dropped, so that a second Enter pressed in impatience does not skip a step unseen.
            quit_now = interactive and "q" in _typed_meanwhile()
            demo_screen(console, sc, run)
            if quit_now:
                break
            last = number == len(steps)
            console.print()
            console.print("[dim]Enter: " + ("end" if last else "next") + "   b: back   r: run again   q: quit[/]"
                          if auto is None else "")
            key = _key(auto)
            if key == "q":
                break
            run = run + 1 if key == "r" else 1
            if key == "b":
                number = max(1, number - 1)
            elif key != "r":
                number += 1
    except KeyboardInterrupt:
        pass
    console.print(f"demo ended at step {min(number, len(steps))} of {len(steps)}"
                  + (f" (lab demo --from {number} goes on from there)" if number < len(steps) else ""))


# --------------------------------------------------------------------------- handouts, requests


def signed(student, selector: str) -> None:
    _ok(f"signed {student.name}'s own request: {student.directory}/{student.name}.crt (serial {student.serial}, "
        f"valid until {student.not_after:%Y-%m-%d}); the key stayed with the student")
    out_console().print(f"  hand it out: lab handout {student.name}{selector}", markup=False)


def handouts(made, sheet, skipped) -> None:
    for h in made:
        _ok(f"{h.zip}" + ("" if h.has_key else "  (no key or .p12: the student has their own key)"))
    out_console().print(f"  passwords: {sheet} (for you: no zip holds a password, nothing was shown)", markup=False)
    if skipped:
        warn(f"no handout for {', '.join(f'{name} ({why})' for name, why in skipped)}: lab client add --force "
             f"{' '.join(name for name, _ in skipped)} issues new ones")


# --------------------------------------------------------------------------- the room


def _room_table(found):
    table = _table(f"{found.connected} of {found.total} students connected", ("student", "connected", "requests",
                   "last verdict", "last seen", "address"))
    for st in sorted(found.students.values(), key=lambda s: (not s.connected, s.name)):
        mark = "[green]yes[/]" if st.connected else ("[yellow]tried[/]" if st.requests else "[dim]not yet[/]")
        verdict = st.last_verdict or "-"
        verdict = f"[green]{verdict}[/]" if verdict == "SUCCESS" else (f"[red]{_escape(verdict)}[/]"
                                                                       if verdict != "-" else verdict)
        table.add_row(st.name, mark, str(st.requests), verdict, (st.last_seen or "-")[:19].replace("T", " "),
                      st.address or "-")
    return table


def room(found) -> None:
    out = out_console()
    out.print(_room_table(found))
    missing = [s.name for s in found.students.values() if not s.requests]
    if missing:
        out.print(f"  not seen yet: {', '.join(missing)}", markup=False)


def room_follow(updates) -> None:
    """Refresh in place (four times a second, from the latest counts); Ctrl-C stops (exit 0)."""
    from rich.live import Live

    class View:
        found = None

        def __rich__(self):
            return _room_table(self.found)

    view = View()
    try:
        view.found = next(updates)
        with Live(view, console=out_console(), refresh_per_second=4):
            for found in updates:
                view.found = found
    except (KeyboardInterrupt, StopIteration):
        pass
