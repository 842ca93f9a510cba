"""A handshake as a two-column sequence diagram, and the files it wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.views.console import escape, new_table, out_console, projector

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table

    from lab.teach.handshake import Handshake, Message


def handshake(h: Handshake, lab_dir: Path) -> None:
    """A two-column sequence diagram: the client on the left, the server on the right."""
    out = out_console()
    kind = "mTLS" if h.server == "mtls" else "TLS"
    out.print(f"[bold]Handshake of {h.scenario}[/]: client → {kind} server at {escape(h.address)}"
              + (f", {h.tls_version}" if h.tls_version else ""))
    had_request = any(m.type == "CertificateRequest" for m in h.messages)
    narrow = projector(out)
    out.print(_narrow(h) if narrow else _wide(h))
    _after(h, lab_dir, had_request, narrow)


def command(h: Handshake, lab_dir: Path) -> None:
    """lab handshake --command: the openssl command behind the diagram, alone (to copy, or to run)."""
    out_console().print(f"# in {lab_dir}/\n{h.command}", markup=False)


def _cn(dn: str | None) -> str:
    """The common name of an RFC 4514 name ("CN=hs Client CA 1a2b,OU=hs,O=mtls-lab" → "CN=hs Client CA 1a2b"):
    on the projector the rest of the name is the lab's, the same on every line (`--wide` shows it)."""
    import re

    if not dn:
        return str(dn)
    found = re.match(r"(CN=(?:\\.|[^,\\])*)", dn)
    return found.group(1) if found else dn


def carries(m: Message) -> str:
    from lab.teach.handshake import carries as said

    return said(m)


def _narrow_certificate(m: Message) -> str:
    d = m.details
    if m.sender == "client":
        if not d.get("subject"):
            return "empty: the client has no certificate to send"
        return _cn(d.get("subject")) + (f"; {d['spiffe_id']}" if d.get("spiffe_id") else "")
    return f"{_cn(d.get('subject'))}, by {_cn(d.get('issuer'))}; names {', '.join(d.get('names') or [])}"


# On the projector, what a message carries in fewer words (the arrow already says who sent it).
_NARROW = {"ClientHello": lambda m: f"{', '.join(m.details.get('versions') or [])}; for {m.details.get('sni')} (SNI)",
           "CertificateVerify": lambda m: "proves it holds the key of its certificate",
           "Certificate": _narrow_certificate,
           "ChangeCipherSpec": lambda m: ("middlebox compatibility (RFC 8446 D.4)" if "middlebox" in
                                          (m.details.get("note") or "") else carries(m)),
           "CertificateRequest": lambda m: "send a certificate from: " + (
               "; ".join(_cn(ca) for ca in m.details.get("certificate_authorities") or []) or "(no CA named)")}


def _narrow(h: Handshake) -> Table:
    """100 columns or fewer: a message a line, the arrow saying who sent it, what it carries beside it,
    folded (never cut) when it is long."""
    from rich.table import Table

    from lab.teach.handshake import carries

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    runs: list[tuple[Message, int]] = []          # the same message sent again in a row: one line, ×N
    for m in h.messages:
        if runs and (runs[-1][0].sender, runs[-1][0].type, carries(runs[-1][0])) == (m.sender, m.type, carries(m)):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((m, 1))
    rows: list[tuple[str, str, str]] = []
    for m, times in runs:
        style = "bold red" if m.type == "Alert" else ("magenta" if m.mtls_only else "")
        name = (f"[{style}]{m.type}[/]" if style else m.type) + (f" ×{times}" if times > 1 else "")
        arrow = "client ─▶" if m.sender == "client" else "◀─ server"
        said = _NARROW[m.type](m) if m.type in _NARROW else carries(m)
        if m.type == "Alert" and rows and rows[-1][1] == name and rows[-1][0] != arrow \
                and rows[-1][2] == said.replace(m.sender, "client" if m.sender == "server" else "server"):
            # The closing pair (close_notify from each side): one line, the arrow both ways.
            rows[-1] = ("◀─ both ─▶", name, f"{m.details.get('level')} {m.details.get('description')}: sent by each side")
            continue
        rows.append((arrow, name + (" [magenta](mTLS)[/]" if m.mtls_only else ""), said))
    for arrow, name, said in rows:
        grid.add_row(arrow, name, escape(said))
    return grid


def _wide(h: Handshake) -> Table:
    from lab.teach.handshake import carries

    table = new_table("", [("", {"no_wrap": True}), ("client", {"no_wrap": True, "justify": "right"}),
                        ("", {"no_wrap": True}), ("server", {"no_wrap": True}), "what it carries"], show_edge=False)
    for m in h.messages:
        mark = "[magenta]mTLS[/]" if m.mtls_only else ""
        style = "bold red" if m.type == "Alert" else ("magenta" if m.mtls_only else "")
        name = f"[{style}]{m.type}[/]" if style else m.type
        if m.sender == "client":
            table.add_row(mark, name, "──────────▶", "", escape(carries(m)))
        else:
            table.add_row(mark, "", "◀──────────", name, escape(carries(m)))
        if m.type == "ServerHello" and h.tls_version == "TLSv1.3":
            table.add_row("", "", "[dim]· · · · · ·[/]", "", "[dim]TLS 1.3: everything below is encrypted on the "
                          "wire (certificates included)[/]")
    return table


def _after(h: Handshake, lab_dir: Path, had_request: bool, narrow: bool = False) -> None:
    out = out_console()
    if not had_request and h.server == "tls" and h.tls_version:
        out.print("  No CertificateRequest: plain TLS never asks the client who it is; only the server proves "
                  "its identity.", markup=False)
    if h.tls_version == "TLSv1.2":
        out.print("  TLS 1.2: both certificates cross the network in clear (TLS 1.3 encrypts them)." if narrow else
                  "  TLS 1.2: the certificates (the server's, and the client's) cross the network in clear; "
                  "TLS 1.3 encrypts them.", markup=False)
    if h.failure:
        out.print(f"  [bold red]the client gave up:[/] {escape(h.failure)}")
    if h.ocsp:          # --revocation ocsp|both: the question the server put to the responder
        out.print(f"  OCSP: {escape(h.ocsp)}")
    hint = "the command: lab handshake --command"      # five projector lines: asked for, it is printed alone
    # Authenticated, then authorized (or not), as who (on the projector: when it was refused).
    if h.identity and (h.http_status == 403 or (h.http_status == 200 and not narrow)):
        out.print(f"  authorized as {escape(h.identity)} (login:role, by issuer and serial)"
                  + (": refused, HTTP 403" if h.http_status == 403 else ""))
    if h.http_status is not None and narrow:
        out.print(f"  then HTTP {h.http_status}" + (f" ({escape(h.verdict)})" if h.verdict else "") + f"   {hint}")
    elif h.http_status is not None:
        verdict = f"; nginx's verdict on the client certificate: {h.verdict}" if h.verdict else ""
        out.print(f"  then HTTP {h.http_status}{escape(verdict)}")
    elif narrow:
        out.print(f"  {hint}", markup=False)
    if not narrow:
        out.print(f"  see it yourself (in {lab_dir}/): {h.command}", markup=False)


def handshake_files(keylog: Path | None, pcap: Path | None, address: str) -> None:
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
