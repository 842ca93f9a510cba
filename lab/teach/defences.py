"""The lesson's defences: what a fix must never turn off.

An exercise is fixed when its symptom is gone and the lesson still holds.
The symptom is decided by real requests (the exercise's checks); the lesson
by the same requests every `lab verify` makes for the refusals (no client
certificate, a rogue CA, an expired certificate, a server-only certificate;
a student at /instructor/, a partner CA's impostor of the instructor)
and by the mTLS server's own configuration for what no request of the lab
can show: that it checks revocations at all, and that it speaks no TLS
below 1.2 (RFC 8996). A fix that turns one off is "not fixed: you turned
off …", named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lab.core import layout
from lab.teach.diagnose import directive

#: The refusals of `lab verify` that every fix must keep (the exercise's own checks come first).
REFUSALS = ("no-cert", "rogue-ca", "expired", "wrong-purpose", "forbidden", "same-cn-other-ca")

# What each refusal defends, in the words of a "not fixed" line.
REFUSAL_DEFENCES = {
    "no-cert": "requiring a client certificate (ssl_verify_client on)",
    "rogue-ca": "trusting only the lab's client CA (ssl_client_certificate)",
    "expired": "refusing an expired client certificate",
    "wrong-purpose": "refusing a certificate not made for clients (clientAuth)",
    "revoked": "refusing a revoked student (ssl_crl)",
    "forbidden": "keeping students out of /instructor/ (the access map)",
    "same-cn-other-ca": "telling the instructor from another CA's impostor (identity by issuer and serial)",
}


@dataclass(frozen=True)
class Defence:
    name: str            # what was turned off, as the student is told
    directive: str       # where to look in nginx.conf


def _protocols(conf: str) -> list[str]:
    return (directive(conf, "ssl_protocols") or "").split()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


# Cipher-list words that let in what the lesson's AEAD-only list keeps out (CBC, RC4, NULL, export, anonymous).
_WEAK_CIPHERS = re.compile(r"(?<![!\-+\w])(ALL|DEFAULT|HIGH|COMPLEMENTOFALL|RC4|NULL|eNULL|aNULL|EXPORT|LOW|MEDIUM|3DES|"
                           r"@SECLEVEL=[01]|"
                           r"DES|MD5|SHA1?|[A-Z0-9-]+-CBC-[A-Z0-9-]+|[A-Z0-9]+-(?:RSA|ECDSA)-AES(?:128|256)-SHA)(?![\w-])")


def _server_defences(server: str, conf: str) -> list[Defence]:
    """What both servers keep: TLS 1.2 and above only (RFC 8996), and the lesson's AEAD-only ciphers."""
    found = []
    label = "the mTLS server" if server == "mtls" else "the TLS server"
    old = [p for p in _protocols(conf) if re.fullmatch(r"(SSLv\d|TLSv1|TLSv1\.1)", p)]
    if old:
        found.append(Defence(f"TLS below 1.2 refused: {' and '.join(old)} are on again on {label} (RFC 8996 "
                             "deprecates them)", "ssl_protocols"))
    ciphers = directive(conf, "ssl_ciphers") or ""
    weak = sorted({m.group(1) for m in _WEAK_CIPHERS.finditer(ciphers)})
    if weak:
        found.append(Defence(f"strong ciphers only: ssl_ciphers on {label} lets in {', '.join(weak)} (the lesson "
                             "allows only ECDHE with AEAD)", "ssl_ciphers"))
    return found


def _ca_keys_on_servers(lab_dir: Path) -> list[Defence]:
    """A CA's private key in a folder a server container mounts (to sign a certificate "right there"):
    whoever gets into the server can then issue certificates the lab trusts."""
    keys = {}
    for name in (layout.SERVER_CA_KEY, layout.CLIENT_CA_KEY):
        text = _read(layout.certs_dir(lab_dir) / name)
        if text:
            keys[text.strip()] = name
    found = []
    for server, (folder, _) in layout.SERVERS.items():
        base = lab_dir / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 65536:
                text = _read(path)
                if text and text.strip() in keys:
                    found.append(Defence(f"CA keys off the servers: {folder}/{path.relative_to(base)} is the "
                                         f"{keys[text.strip()].removesuffix('.key')}'s private key, in a folder the "
                                         f"{server} container mounts", "(a file)"))
    return found


def _unrecorded_client_certificate(lab_dir: Path) -> list[Defence]:
    """The lab's client certificate re-issued during an exercise by the client CA outside its database
    (`openssl x509 -req`): no serial in index.txt, so it can never be revoked."""
    from lab.pki import ca
    from lab.teach.exercise import saved_copy

    text = _read(layout.certs_dir(lab_dir) / layout.CLIENT_CRT)
    lesson = saved_copy(lab_dir, f"{layout.CERTS_DIR}/{layout.CLIENT_CRT}")
    if not text or lesson is None or lesson.strip() == text.strip():
        return []           # the lesson's own (gen-certs.sh signs it before the CA has a database), or no exercise
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(text.encode())
        issuer_ca = ca.load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT)
    except (OSError, ValueError):
        return []
    if cert.issuer != issuer_ca.subject or cert.serial_number in {r.serial for r in ca.ca_records(lab_dir)}:
        return []
    return [Defence(f"revocable certificates: certs/{layout.CLIENT_CRT} (serial {cert.serial_number:X}) was signed "
                    "outside the client CA's database, so it can never be revoked: issue it with openssl ca",
                    "(the CA database)")]


def turned_off(lab_dir: Path) -> list[Defence]:
    """The defences the lab no longer has (none, in the lesson's configuration): the mTLS server's own
    (revocation, client certificates required, a short chain), both servers' (TLS 1.2 and above, strong
    ciphers), and the PKI's (CA keys off the servers, every client certificate revocable)."""
    conf = _read(lab_dir / layout.SERVERS["mtls"][0] / layout.NGINX_CONF)
    if conf is None:
        return []
    found = []
    # Revocation is on with a CRL, or with an OCSP responder asked at every handshake (lab up --revocation).
    if not directive(conf, "ssl_crl") and (directive(conf, "ssl_ocsp") or "off") not in ("on", "leaf"):
        found.append(Defence("revocation: the server no longer reads the CRL", "ssl_crl"))
    for server, (folder, _) in layout.SERVERS.items():
        text = conf if server == "mtls" else _read(lab_dir / folder / layout.NGINX_CONF)
        found += _server_defences(server, text or "")
    if (directive(conf, "ssl_verify_client") or "") != "on":
        found.append(Defence("client certificates required: ssl_verify_client is not `on`", "ssl_verify_client"))
    depth = directive(conf, "ssl_verify_depth")
    if depth is not None and depth.isdigit() and int(depth) > 2:
        found.append(Defence(f"a short chain: ssl_verify_depth {depth} accepts chains the lab never issues",
                             "ssl_verify_depth"))
    return found + _ca_keys_on_servers(lab_dir) + _unrecorded_client_certificate(lab_dir)
