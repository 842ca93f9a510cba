"""The lesson's defences: what a fix must never turn off.

An exercise is fixed when its symptom is gone and the lesson still holds.
The symptom is decided by real requests (the exercise's checks); the lesson
by the same requests every `lab verify` makes for the refusals (no client
certificate, a rogue CA, an expired certificate, a server-only certificate)
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
REFUSALS = ("no-cert", "rogue-ca", "expired", "wrong-purpose")

# What each refusal defends, in the words of a "not fixed" line.
REFUSAL_DEFENCES = {
    "no-cert": "requiring a client certificate (ssl_verify_client on)",
    "rogue-ca": "trusting only the lab's client CA (ssl_client_certificate)",
    "expired": "refusing an expired client certificate",
    "wrong-purpose": "refusing a certificate not made for clients (clientAuth)",
    "revoked": "refusing a revoked student (ssl_crl)",
}


@dataclass(frozen=True)
class Defence:
    name: str            # what was turned off, as the student is told
    directive: str       # where to look in nginx.conf


def _protocols(conf: str) -> list[str]:
    return (directive(conf, "ssl_protocols") or "").split()


def turned_off(lab_dir: Path) -> list[Defence]:
    """The defences the mTLS server's nginx.conf no longer has (none, in the lesson's configuration)."""
    conf_path = lab_dir / layout.SERVERS["mtls"][0] / layout.NGINX_CONF
    try:
        conf = conf_path.read_text(errors="replace")
    except OSError:
        return []
    found = []
    if not directive(conf, "ssl_crl"):
        found.append(Defence("revocation: the server no longer reads the CRL", "ssl_crl"))
    old = [p for p in _protocols(conf) if re.fullmatch(r"(SSLv\d|TLSv1|TLSv1\.1)", p)]
    if old:
        found.append(Defence(f"TLS below 1.2 refused: {' and '.join(old)} are on again (RFC 8996 deprecates them)",
                             "ssl_protocols"))
    if (directive(conf, "ssl_verify_client") or "") != "on":
        found.append(Defence("client certificates required: ssl_verify_client is not `on`", "ssl_verify_client"))
    depth = directive(conf, "ssl_verify_depth")
    if depth is not None and depth.isdigit() and int(depth) > 2:
        found.append(Defence(f"a short chain: ssl_verify_depth {depth} accepts chains the lab never issues",
                             "ssl_verify_depth"))
    return found
