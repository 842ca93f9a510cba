"""The handshake of one scenario, as it crossed: every TLS message, in order.

Observed with `openssl s_client -msg`, on purpose: it is the tool students
have and can run themselves (the command is printed), it shows the TLS 1.3
handshake messages after decrypting them (CertificateRequest and both
Certificates are encrypted on the wire in TLS 1.3), and it is a public
interface. Python's ssl module exposes a message callback only through a
private API (SSLContext._msg_callback), which lab does not use. The details
of each message come from the same run: the server's certificate chain, the
"Acceptable client certificate CA names" of its CertificateRequest, the
negotiated version and cipher; the client's certificate is the one it sent.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core import layout
from lab.core.net import host_port

TLS_VERSIONS = {"1.2": "-tls1_2", "1.3": "-tls1_3"}
# Messages that only mutual TLS has: the server asks, the client answers and proves it holds the key.
_MTLS_ONLY = {("server", "CertificateRequest"), ("client", "Certificate"), ("client", "CertificateVerify")}
_LINE = re.compile(r"^(<<<|>>>) (?:TLS|DTLS|SSL) [\d.]+, (\w+) \[length ([0-9a-f]+)\](?:, (.*))?$")


@dataclass
class Message:
    sender: str                  # "client" or "server"
    type: str                    # RFC 8446 / 5246 name, or "Alert", "ChangeCipherSpec"
    length: int                  # of the message, as s_client counts it
    details: dict = field(default_factory=dict)
    mtls_only: bool = False
    raw: bytes = b""             # the message's bytes, as s_client dumped them

    def to_dict(self) -> dict:
        return {"from": self.sender, "type": self.type, **self.details,
                **({"mtls_only": True} if self.mtls_only else {})}


@dataclass
class Handshake:
    scenario: str
    server: str                  # tls / mtls
    address: str
    tls_version: str | None
    cipher: str | None
    messages: list
    http_status: int | None
    verdict: str | None          # nginx's $ssl_client_verify, echoed in X-Client-Verify
    command: str                 # the s_client command, to run by hand
    failure: str = ""            # the client's own reason when it gave up
    argv: list[str] = field(default_factory=list)   # the s_client command as run (paths relative to the lab)
    identity: str = ""           # who the mTLS server took the client for when it authorized (login:role)
    ocsp: str = ""               # --revocation ocsp|both: what the server asked the responder, and its answer

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("messages", "argv")}
        d["messages"] = [m.to_dict() for m in self.messages]
        return d


def carries(m: Message, brief: bool = False) -> str:
    """What a message carries, in words: in full for `lab handshake`, briefly (the demo's one line a
    message, with [mTLS] before what only mutual TLS has; "" for what the lesson leaves out)."""
    d = m.details
    mtls = "[mTLS] " if brief and m.mtls_only else ""
    if m.type == "ServerHello":
        return f"{d.get('version')}, {d.get('cipher_suite')}"
    if m.type == "Certificate":
        if brief or m.sender == "client":
            spiffe = f"; {d['spiffe_id']}" if d.get("spiffe_id") and not brief else ""
            subject = d.get("subject")
            return mtls + (f"{subject}{spiffe}" if subject else
                           ("(empty)" if brief else "empty: the client has no certificate to send"))
        return f"{d.get('subject')}, issued by {d.get('issuer')}; names {', '.join(d.get('names') or [])}"
    if m.type == "CertificateRequest":
        cas = d.get("certificate_authorities") or []
        if brief:
            return mtls + "CAs: " + "; ".join(cas)
        return "send a certificate from: " + ("; ".join(cas) if cas else "(no CA named)")
    if m.type == "CertificateVerify":
        if brief:
            return mtls + "proves it holds the key" if mtls else ""
        return f"the {m.sender} proves it holds the certificate's private key"
    if m.type == "Alert":
        return f"{d.get('level')} {d.get('description')}" + ("" if brief else f": sent by the {m.sender}")
    if brief:
        return ""
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


def _spiffe_id(cert) -> str | None:
    """The identity in a certificate's URI SAN (spiffe://LAB/ROLE/LOGIN for the lab's students), or None."""
    from lab.pki.ca import uri_sans

    uris = uri_sans(cert)
    return uris[0] if uris else None


def _with_server_change_cipher_spec(messages: list[Message]) -> list[Message]:
    """TLS 1.2: the server sends ChangeCipherSpec right before its Finished (RFC 5246, 7.1); it is on the
    wire (tshark shows it), but `openssl s_client -msg` reports only the one it sends, not one it receives."""
    out: list[Message] = []
    for m in messages:
        before = out[-1] if out else None
        if m.sender == "server" and m.type == "Finished" and not (before and before.sender == "server"
                                                                    and before.type == "ChangeCipherSpec"):
            out.append(Message("server", "ChangeCipherSpec", 1,
                               {"note": "new keys from here (s_client omits it)"}))
        out.append(m)
    return out


def parse_msg(output: str) -> list[Message]:
    """The messages `openssl s_client -msg` reports, in order (record headers and inner content types
    left out), each with the bytes s_client dumped under it (Message.raw)."""
    found: list[Message] = []
    current = None
    for line in output.splitlines():
        m = _LINE.match(line)
        if m is None:
            if current is not None and line.startswith("    ") and re.fullmatch(r"(\s+[0-9a-f]{2})+\s*", line):
                current.raw += bytes.fromhex(line.replace(" ", ""))
            else:
                current = None
            continue
        current = None
        if m.group(2) in ("RecordHeader", "InnerContent", "ApplicationData"):
            continue
        sender = "client" if m.group(1) == ">>>" else "server"
        kind, length, what = m.group(2), int(m.group(3), 16), (m.group(4) or "").strip()
        if kind == "Handshake":
            current = Message(sender, what or "Handshake", length)
        elif kind == "Alert":
            level, _, description = what.partition(" ")
            current = Message(sender, "Alert", length, {"level": level, "description": description})
        else:
            current = Message(sender, kind, length)
        found.append(current)
    return found


def _first_certificate(raw: bytes, tls13: bool):
    """The first certificate of a Certificate message (RFC 8446 4.4.2 / RFC 5246 7.4.2), or None when it is empty."""
    from cryptography import x509

    body = raw[4:]                        # handshake type and length
    if tls13:
        body = body[1 + body[0]:]         # certificate_request_context
    if len(body) < 6 or int.from_bytes(body[:3], "big") == 0:
        return None
    size = int.from_bytes(body[3:6], "big")
    try:
        return x509.load_der_x509_certificate(body[6:6 + size])
    except ValueError:
        return None


def _dn(openssl_dn: str) -> str:
    """'O = mtls-lab, OU = x, CN = y' (openssl's order) as 'CN=y,OU=x,O=mtls-lab' (RFC 4514, as lab shows names)."""
    parts = [p.strip().replace(" = ", "=", 1) for p in re.split(r",\s*(?=[A-Za-z.]+ = )", openssl_dn.strip()) if p.strip()]
    return ",".join(reversed(parts))


def _section(output: str, title: str) -> list[str]:
    lines = output.splitlines()
    try:
        start = lines.index(title) + 1
    except ValueError:
        return []
    out = []
    for line in lines[start:]:
        if line.startswith(("---", "Requested Signature", "Client Certificate Types")):
            break
        out.append(line)
    return out


def command(lab_dir: Path, sc, address: str, hostname: str, port: int, tls: str | None,
            keylog: Path | None = None) -> list[str]:
    """The s_client command for a scenario, as a list; paths relative to the lab directory."""
    cmd = ["openssl", "s_client", "-connect", host_port(address, port), "-servername", hostname, "-msg", "-ign_eof"]
    if sc.trust == "lab":
        cmd += ["-CAfile", f"{layout.CERTS_DIR}/{layout.SERVER_CA_CRT}"]
    if sc.trust != "none":
        cmd += ["-verify_return_error", "-verify_hostname", hostname, "-x509_strict"]
    if sc.client_cert:
        cmd += ["-cert", sc.client_cert[0], "-key", sc.client_cert[1]]
        chain = Path(sc.client_cert[0]).with_suffix(".chain.pem")     # a gallery specimen's intermediate
        if (lab_dir / chain).is_file():
            cmd += ["-cert_chain", str(chain)]
    if sc.weak_client:      # lab gallery: the client sends what a modern one would refuse
        cmd += ["-cipher", "DEFAULT:@SECLEVEL=0"]
    if tls:
        cmd.append(TLS_VERSIONS[tls])
    elif sc.max_tls:
        cmd.append(TLS_VERSIONS[sc.max_tls])
    if keylog is not None:
        cmd += ["-keylogfile", str(keylog)]
    return cmd


def rooted(argv: list[str], folder: str) -> list[str]:
    """The command as typed from elsewhere: its file arguments (relative to the lab) under `folder`."""
    files = {"-CAfile", "-cert", "-key", "-cert_chain"}
    return [f"{folder}/{a}" if i and argv[i - 1] in files else a for i, a in enumerate(argv)]


def request_text(hostname: str, port: int, own: bool = True, path: str = "/" + layout.HELLO_FILE) -> str:
    """What the client sends once the handshake is done: the scenario's GET (and it asks the server to close).
    lab's own request says so (User-Agent), and `lab room` leaves it out; the one printed for a person
    to run is theirs, and counts."""
    agent = f"User-Agent: {layout.OWN_AGENT}-handshake\r\n" if own else ""
    return f"GET {path} HTTP/1.1\r\nHost: {hostname}:{port}\r\n{agent}Connection: close\r\n\r\n"


def shell_line(cmd: list[str], request: str) -> str:
    """The command as one line to paste: the request piped in, -ign_eof to read the answer."""
    return f"printf {shlex.quote(request.replace(chr(13) + chr(10), chr(92) + 'r' + chr(92) + 'n'))} | {shlex.join(cmd)}"


def observe(lab_dir: Path, sc, address: str, hostname: str, port: int, tls: str | None = None,
            keylog: Path | None = None, timeout: float = 10.0) -> Handshake:
    """Make the scenario's connection with s_client, send the scenario's GET, and read back every message."""
    cmd = command(lab_dir, sc, address, hostname, port, tls, keylog)
    request = request_text(hostname, port, path=sc.path)
    try:
        proc = subprocess.run(cmd, cwd=lab_dir, input=request, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        from lab.core.errors import RuntimeFailure

        raise RuntimeFailure(f"openssl s_client got no answer from {host_port(address, port)} within {timeout:g} s",
                             hint="is the lab running? lab status") from None
    out = proc.stdout + proc.stderr
    messages = parse_msg(proc.stdout)
    version = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)", proc.stdout, re.M)
    status = re.search(r"^HTTP/1\.[01] (\d{3})", proc.stdout, re.M)
    verdict = re.search(r"^X-Client-Verify: (.*?)\r?$", proc.stdout, re.M)
    identity = re.search(r"^X-Lab-Identity: (.*?)\r?$", proc.stdout, re.M)
    failure = re.search(r"^Verification error: (.*)$", out, re.M) or re.search(r"^verify error:num=\d+:(.*)$", out, re.M)
    cas = [_dn(line) for line in _section(proc.stdout, "Acceptable client certificate CA names") if line.strip()]
    negotiated = version.group(1) if version else None
    tls13 = negotiated == "TLSv1.3"
    for msg in messages:
        msg.mtls_only = (msg.sender, msg.type) in _MTLS_ONLY
        if msg.type == "ClientHello":
            offered = [f"TLSv{tls}"] if tls else (["TLSv1.2"] if sc.max_tls == "1.2" else ["TLSv1.3", "TLSv1.2"])
            msg.details = {"versions": offered, "sni": hostname}
        elif msg.type == "ServerHello":
            msg.details = {"version": negotiated, "cipher_suite": version.group(2) if version else None}
        elif msg.type == "Certificate":
            cert = _first_certificate(msg.raw, tls13)
            msg.details = {"subject": cert.subject.rfc4514_string() if cert else None}
            if cert is not None and msg.sender == "client":
                msg.details["spiffe_id"] = _spiffe_id(cert)
            if cert is not None and msg.sender == "server":
                from lab.pki.certs import server_sans

                msg.details |= {"issuer": cert.issuer.rfc4514_string(),
                                "names": [n.split(":", 1)[1] for n in server_sans(cert)]}
        elif msg.type == "CertificateRequest":
            msg.details = {"certificate_authorities": cas}
        elif msg.type == "ChangeCipherSpec" and tls13:
            msg.details = {"note": "middlebox compatibility only (RFC 8446, D.4)"}
    if negotiated == "TLSv1.2":
        messages = _with_server_change_cipher_spec(messages)
    return Handshake(sc.name, sc.server, host_port(address, port), negotiated, version.group(2) if version else None,
                     messages, int(status.group(1)) if status else None, verdict.group(1) if verdict else None,
                     shell_line(command(lab_dir, sc, address, hostname, port, tls), request_text(hostname, port, own=False, path=sc.path)),
                     failure.group(1).strip() if failure and not status else "",
                     command(lab_dir, sc, address, hostname, port, tls), identity.group(1) if identity else "")
