"""The command line's options, declared once: every command that is about a lab
takes the same --dir/--name (and LAB_* variables), every server option the same help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lab.core import layout

DirOpt = Annotated[Optional[Path], typer.Option(
    "--dir", envvar="LAB_DIR", help="Lab directory [default: ./NAME, i.e. ./mtls-lab].", show_default=False)]
NameOpt = Annotated[Optional[str], typer.Option(
    "--name", envvar="LAB_NAME", show_default=False,
    help=f"Lab name: containers, network, labels [default: saved, else {layout.DEFAULT_NAME}].")]
HostOpt = Annotated[Optional[str], typer.Option(
    "--host", show_default=False,
    help="Check a lab on another machine (e.g. the instructor's) by this name or address, with this lab "
         "directory's CA and client files; the name must be in the server certificate (lab up --san).")]
AsOpt = Annotated[Optional[str], typer.Option(
    "--as", help="Run the client-cert scenario with this student's certificate (lab client add NAME).",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Data on stdout as JSON.")]
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
PublicNameOpt = Annotated[Optional[list[str]], typer.Option(
    "--public-name", show_default=False,
    help="Room mode: a DNS name or address students reach this machine by (the room's DNS, a fixed address); "
         "first in the server certificate and in every student URL; repeatable.")]
DaysOpt = Annotated[Optional[int], typer.Option(
    "--days", show_default=False,
    help=f"Lifetime of new leaf certificates in days [default: {layout.DEFAULT_DAYS}; at most {layout.MAX_DAYS}].")]
RevocationOpt = Annotated[Optional[str], typer.Option(
    "--revocation", show_default=False, envvar="LAB_REVOCATION",
    help="How the mTLS server learns of a revocation: crl (read at each reload), ocsp (a responder, NAME-ocsp, "
         "asked at every full handshake: no reload) or both [default: crl; saved in lab.yml].")]
RegenerateOpt = Annotated[bool, typer.Option("--regenerate", help="Make new certificates even if valid ones exist.")]
DiscardOpt = Annotated[bool, typer.Option(
    "--discard-students", help="Confirm that new CAs delete every student's certificate (they need new ones).")]

FilesArg = Annotated[Optional[list[str]], typer.Argument(
    help="Rendered files, e.g. nginx-mtls/nginx.conf [default: all].", show_default=False)]
FromOpt = Annotated[Optional[Path], typer.Option(
    "--from", help="Also read exercises from this folder of exercise files (yours win over lab's of the same id).",
    show_default=False)]
