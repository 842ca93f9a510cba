"""A handshake as a two-column sequence diagram, and the files it wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.teach.handshake import carries
from lab.views.console import escape, new_table, out_console

if TYPE_CHECKING:
    from pathlib import Path

    from lab.teach.handshake import Handshake


def handshake(h: Handshake, lab_dir: Path) -> None:
    """A two-column sequence diagram: the client on the left, the server on the right."""
    out = out_console()
    kind = "mTLS" if h.server == "mtls" else "TLS"
    out.print(f"[bold]Handshake of scenario {h.scenario}[/]: client → {kind} server at {escape(h.address)}"
              + (f", {h.tls_version}" if h.tls_version else ""))
    table = new_table("", [("", {"no_wrap": True}), ("client", {"no_wrap": True, "justify": "right"}),
                        ("", {"no_wrap": True}), ("server", {"no_wrap": True}), "what it carries"], show_edge=False)
    had_request = any(m.type == "CertificateRequest" for m in h.messages)
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
    out.print(table)
    if not had_request and h.server == "tls" and h.tls_version:
        out.print("  No CertificateRequest: plain TLS never asks the client who it is; only the server proves "
                  "its identity.", markup=False)
    if h.tls_version == "TLSv1.2":
        out.print("  TLS 1.2: the certificates (the server's, and the client's) cross the network in clear; "
                  "TLS 1.3 encrypts them.", markup=False)
    if h.failure:
        out.print(f"  [bold red]the client gave up:[/] {escape(h.failure)}")
    if h.http_status is not None:
        verdict = f"; nginx's verdict on the client certificate: {h.verdict}" if h.verdict else ""
        out.print(f"  then HTTP {h.http_status}{escape(verdict)}")
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
