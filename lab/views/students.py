"""What the student commands show: issued, listed, revoked, signed, handed out;
the lab's PKI. Never a password on screen unless asked for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core import layout
from lab.views.console import escape, new_table, ok, out_console, warn

if TYPE_CHECKING:
    from rich.table import Table

    from lab.app.students import AddReport, RemoveReport, RevokeReport
    from lab.pki.handout import Handout
    from lab.pki.inventory import CertInfo
    from lab.pki.students import IssuedStudent, Renewal, Student


def until(end: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A certificate's end: the date, or for one that ends within two days the time and what is left."""
    if end is None:
        return "-"
    now = now or dt.datetime.now(dt.UTC)
    left = end - now
    if left > dt.timedelta(days=2):
        return f"{end:%Y-%m-%d}"
    if left <= dt.timedelta(0):
        return f"{end:%Y-%m-%d %H:%M} UTC"
    minutes = -(-int(left.total_seconds()) // 60)      # rounded up: "1m left" until it has ended
    told = f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
    return f"{end:%Y-%m-%d %H:%M} UTC, {told} left"


def issued(report: AddReport, selector: str, show_passwords: bool = False) -> None:
    """Never a password on screen (a projector shows it to the class) unless asked for."""
    out = out_console()
    for i in report.issued:
        ok(f"{_who(i)}: {i.directory}/ (serial {i.serial}, valid until {until(i.not_after)})")
        if show_passwords:
            out.print(f"    p12 password: {i.password}", markup=False)
    if report.issued:
        out.print(f"  .p12 passwords: in {report.passwords}/ (for you, not the students' folders); "
                  + ("shown above" if show_passwords else "not shown (--show-passwords shows them)"), markup=False)
    if report.skipped:
        out.print(f"  kept: {', '.join(report.skipped)} already had a certificate (--force re-issues)", markup=False)
    if report.issued:
        out.print(f"Try: lab verify --as {report.issued[0].name}{selector}", markup=False)


def renewed(renewal: Renewal, selector: str) -> None:
    i = renewal.issued
    life = f", for {_lifetime(renewal.ttl)}" if renewal.ttl else ""
    ok(f"renewed {_who(i)}: serial {i.serial}, valid until {until(i.not_after)}{life}; new key and .p12 in "
       f"{i.directory}/")
    out = out_console()
    if renewal.old_revoked:
        out.print(f"  the old certificate (serial {renewal.old_serial}) is revoked: it had months to run",
                  markup=False)
    else:
        out.print(f"  the old certificate (serial {renewal.old_serial}) is not revoked: it ends by itself "
                  f"({until(renewal.old_end)})", markup=False)
    out.print(f"  hand out the new files: lab handout {i.name}{selector}", markup=False)


def _lifetime(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _who(student: IssuedStudent | Student) -> str:
    """"José Núñez (login jose-nunez)", or the login alone where it is the name."""
    return student.name if student.shown == student.name else f"{student.shown} (login {student.name})"


_MARKS = {"valid": "[green]✓[/]", "revoked": "[bold red]✗[/]"}


def _student_grid(found: list[Student], width: int) -> Table:
    """The projector's list: every name whole with its state's mark, thirty on one screen (lab --wide: the table,
    with logins, serials and expiry)."""
    from lab.views.console import name_grid

    shown = [c.shown for c in found]
    counts = {state: sum(1 for c in found if c.status == state) for state in ("valid", "revoked")}
    other = len(found) - counts["valid"] - counts["revoked"]
    title = (f"{len(found)} student(s): {counts['valid']} valid, {counts['revoked']} revoked"
             + (f", {other} expired or unusable" if other else "") + "   ✓ valid  ✗ revoked  ! expired, unusable")
    return name_grid(title, [(_MARKS.get(c.status, "[yellow]![/]"),
                              c.shown if shown.count(c.shown) == 1 else f"{c.shown} ({c.name})") for c in found], width)


def students(found: list[Student]) -> None:
    from lab.views.console import projector

    out = out_console()
    if projector(out):
        out.print(_student_grid(found, out.width))
        out.print("  lab --wide client list: logins, serials, expiry", markup=False)
        _problems(found)
        return
    keep = {"no_wrap": True}      # facts: a serial or a date is never cut; the name folds when it must
    logins = any(c.shown != c.name for c in found)      # a login column only where a login is not the name
    table = new_table(f"{len(found)} student(s)", [("name", {"overflow": "fold"}),
                                                   *([("login", {"overflow": "fold"})] if logins else []),
                                                   ("serial", keep), ("valid until", keep), ("status", keep)])
    for c in found:
        state = {"valid": "[green]valid[/]", "revoked": "[bold red]revoked[/]"}.get(c.status, f"[yellow]{c.status}[/]")
        table.add_row(escape(c.shown), *([c.name] if logins else []), c.serial,
                      until(c.not_after), state)
    out.print(table)
    _problems(found)


def _problems(found: list[Student]) -> None:
    for c in found:
        if c.status == "folder missing":
            warn(c.problem)
        elif c.problem:
            warn(f"{c.name}: {c.problem}: lab client add --force {c.name} issues a new one")


def revoked(report: RevokeReport) -> None:
    out = out_console()
    student = report.student
    ok(f"revoked {_who(student)} (serial {student.serial}); the CRL is renewed")
    if not report.enforced:
        out.print("  the lab is not running: the next `lab up` uses the new CRL", markup=False)
        return
    if not report.observed:
        why = (f"{student.name}'s certificate cannot be read ({report.unreadable})" if report.unreadable
               else f"{student.name}'s key is not in this lab")
        out.print(f"  the mTLS server reloaded without downtime the CRL that lists it; no request shows it here: "
                  f"{why}", markup=False)
        return
    if report.by_ocsp:
        out.print(f"  no reload: the OCSP responder now answers \"revoked\", and the mTLS server refuses "
                  f"{student.name} at the next full handshake: {report.observed}", markup=False)
    else:
        out.print(f"  the mTLS server reloaded without downtime and now refuses {student.name}: {report.observed}",
                  markup=False)
    out.print(f"  see it: {report.curl}", markup=False)


def removed(report: RemoveReport) -> None:
    if report.revoked is not None:
        revoked(report.revoked)
    ok(f"removed {report.name}: " + (", ".join(report.deleted) if report.deleted else "nothing of theirs was left")
       + "; the CA database keeps their revoked certificate (its serial is never reused)")


def signed(student: IssuedStudent, selector: str) -> None:
    ok(f"signed {_who(student)}'s own request: {student.directory}/{student.name}.crt (serial {student.serial}, "
        f"valid until {student.not_after:%Y-%m-%d}); the key stayed with the student")
    out_console().print(f"  hand it out: lab handout {student.name}{selector}", markup=False)


def handouts(made: list[Handout], sheet: Path, skipped: list[tuple[str, str]], slips: Path | None = None) -> None:
    for h in made:
        ok(f"{h.zip}" + ("" if h.has_key else "  (no key or .p12: the student has their own key)"))
    out_console().print(f"  passwords: {sheet} (for you: no zip holds a password, nothing was shown)", markup=False)
    if slips is not None:
        out_console().print(f"  slips to print and cut out: {slips} (passwords on it: keep it like the sheet)",
                            markup=False)
    if skipped:
        warn(f"no handout for {', '.join(f'{name} ({why})' for name, why in skipped)}: lab client add --force "
             f"{' '.join(name for name, _ in skipped)} issues new ones")


def _cn(dn: str) -> str:
    import re

    found = re.match(r"CN=((?:\\.|[^,\\])*)", dn or "")
    return found.group(1) if found else (dn or "-")


def _short_cn(cn: str, lab: str) -> str:
    """A lab certificate's name without what the title says already: "demo Client CA 1a2b3c" as "Client CA"
    (the lab's name first, the CA's random tag last)."""
    import re

    short = cn.removeprefix(f"{lab} ") if cn != lab else cn
    return re.sub(r"( CA) [0-9a-f]{6}$", r"\1", short)


def _pki_compact(lab_dir: Path, infos: list[CertInfo]) -> None:
    """The projector's PKI: a line per certificate, its file (a student's, their folder), whom it names, which
    of the lab's CAs issued it, its end; lab --wide certs (or --json) for every field."""
    from pathlib import PurePath

    out = out_console()
    issuers = {i.subject: PurePath(i.file).stem for i in infos if not i.problem}
    table = new_table(f"PKI of {lab_dir}/ ({len(infos)} certificates; lab --wide certs: every field)",
                      [("certificate", {"no_wrap": True}), ("issued to", {"overflow": "fold"}),
                       ("by", {"no_wrap": True}), ("valid until", {"no_wrap": True})])
    gallery = [i for i in infos if i.file.startswith("gallery-certs/")]
    for i in infos:
        if i in gallery:
            continue
        path = PurePath(i.file)
        shown = f"{path.parent}/" if path.parts[0] == layout.CLIENTS_DIR and path.stem == path.parent.name else i.file
        if i.problem:
            table.add_row(escape(shown), f"[bold red]{escape(i.problem)}[/]", "", "")
            continue
        by = "itself" if i.subject == i.issuer else issuers.get(i.issuer, _cn(i.issuer))
        until = ("[bold red]expired[/]" if i.days_left < 0 else
                 f"[bold red]{i.days_left} days left[/]" if i.days_left < layout.EXPIRY_WARN_DAYS else i.not_after[:10])
        table.add_row(escape(shown), escape(_short_cn(_cn(i.subject), lab_dir.name)), escape(by), until)
    if gallery:          # one line: the specimens are lab gallery's to show
        table.add_row("gallery-certs/", f"{len(gallery)} specimens", "lab gallery", "")
    out.print(table)


def pki(lab_dir: Path, infos: list[CertInfo]) -> None:
    from lab.views.console import projector

    out = out_console()
    if projector(out):
        _pki_compact(lab_dir, infos)
        return
    out.print(f"PKI of {lab_dir}/ ({len(infos)} certificates)", markup=False)
    for i in infos:
        if i.problem:
            out.print(f"\n[bold]{escape(i.file)}[/]\n  [bold red]{escape(i.problem)}[/]")
            continue
        soon = i.days_left < layout.EXPIRY_WARN_DAYS
        left = f"[bold red]{i.days_left} days left[/]" if soon else f"{i.days_left} days left"
        out.print(f"\n[bold]{escape(i.file)}[/]")
        for label, value in (("subject", i.subject), ("issuer", i.issuer), ("serial", i.serial),
                             ("names", ", ".join(i.sans)), ("key usage", ", ".join(i.key_usage)),
                             ("ext. key usage", ", ".join(i.extended_key_usage)),
                             ("may vouch for", ", ".join(i.name_constraints)),
                             ("valid", f"{i.not_before[:16]} → {i.not_after[:16]} UTC"), ("sha-256", i.sha256)):
            if value:
                out.print(f"  {label:<15} {value}", markup=False)
        out.print(f"  {'':<15} {left}")


def expiry_warnings(infos: list[CertInfo]) -> None:
    for i in infos:
        if i.problem:
            warn(f"{i.file}: {i.problem}")
        elif 0 <= i.days_left < layout.EXPIRY_WARN_DAYS and not i.file.startswith(layout.DEMO_DIR):
            warn(f"{i.file} expires in {i.days_left} days: lab up --regenerate")
