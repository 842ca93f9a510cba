"""What lab gallery shows: a row per bad client certificate, what the standard says, what nginx did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console, projector

if TYPE_CHECKING:
    from lab.app.gallery import GalleryRun
    from lab.teach.gallery import Row


def _nginx(row: Row, short: bool) -> str:
    from lab.teach.gallery import error_number

    number = error_number(row.nginx)
    said = row.nginx.removeprefix("FAILED:") if short else row.nginx
    return said + (f" ({number})" if number is not None else "")


def _mark(row: Row) -> str:
    return "[green]✓[/]" if row.as_documented else "[bold red]✗[/]"


def gallery(run: GalleryRun, named: bool = False) -> None:
    out = out_console()
    report = run.report
    title = (f"{len(report.rows)} client certificates, nginx {report.nginx_version} with OpenSSL "
             f"{report.openssl_version}" + ("  (made now in gallery-certs/)" if run.made else ""))
    if named:
        for r in report.rows:
            s = r.specimen
            out.print(f"{_mark(r)} [bold]{s.name}[/]: {escape(s.wrong)}")
            facts = [("rule", s.rule + (f"; x509-limbo {s.limbo}" if s.limbo else "")),
                     ("a strict validator", s.strict), ("nginx", _nginx(r, short=False) + ("   ≠ the standard" if r.differs else "")),
                     ("documented", " or ".join(s.nginx)), ("openssl -x509_strict", r.openssl), ("pyca/cryptography", r.pyca)]
            facts += [("lower OpenSSL security levels", r.seclevel1)] if r.seclevel1 else []
            facts += [("why they differ", s.why)] if r.differs and s.why else []
            facts += [("by hand", r.curl)]
            for label, text in facts:
                out.print(f"  {label}: {escape(text)}", markup=True)
        return
    if projector(out):
        out.print(title, markup=False)
        grid = new_table("", [("", {"no_wrap": True}), ("certificate", {"no_wrap": True}),
                              ("standard", {"no_wrap": True}), ("", {"no_wrap": True}), ("nginx", {"overflow": "fold"})],
                         show_edge=False, pad_edge=False, padding=(0, 1))
        for r in report.rows:
            grid.add_row(_mark(r), r.specimen.name, r.specimen.strict, "≠" if r.differs else "", escape(_nginx(r, True)))
        out.print(grid)
    else:
        table = new_table(title, [("", {"no_wrap": True}), ("certificate", {"no_wrap": True}), "what is wrong",
                                  "rule (x509-limbo)", ("standard", {"no_wrap": True}), "nginx", ("≠", {"no_wrap": True}),
                                  "openssl -x509_strict", "pyca/cryptography"])
        for r in report.rows:
            s = r.specimen
            table.add_row(_mark(r), s.name, escape(s.wrong), escape(s.rule + (f" ({s.limbo})" if s.limbo else "")),
                          s.strict, escape(_nginx(r, False)), "≠" if r.differs else "", escape(r.openssl), escape(r.pyca))
        out.print(table)
    differ = [r.specimen.name for r in report.rows if r.differs]
    out.print(f"≠ {len(differ)} where the standard and nginx disagree: lab gallery NAME says why", markup=False)
    documented = len(report.rows) - len(report.changed)
    out.print(f"{documented} of {len(report.rows)} as documented for this nginx (✓)", markup=False)
