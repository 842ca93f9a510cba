"""The revocation race: how long a revoked student still gets in, by how the server learns of revocations
and by the kind of connection. Real requests against a running lab of its own (lab/app/race.py makes it and
removes it); every wait bounded. No printing: the view shows the timeline.

Modes: a CRL renewed without a reload (nginx reads ssl_crl only when its configuration loads), a CRL with a
reload, OCSP without a cache (asked at every full handshake), OCSP with a cache (an answer kept until its
nextUpdate, an hour when it has none), and a short-lived certificate (nothing revoked: it ends).
Connections: a new full handshake, a resumed TLS session (its certificate is not checked again), and a
keep-alive connection opened before the revocation (no handshake at all).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lab.core import layout

Mode = Literal["crl-no-reload", "crl-reload", "ocsp", "ocsp-cache", "short-lived"]
MODES: tuple[Mode, ...] = ("crl-no-reload", "crl-reload", "ocsp", "ocsp-cache", "short-lived")
Kind = Literal["full handshake", "resumed session", "keep-alive"]
KINDS: tuple[Kind, ...] = ("full handshake", "resumed session", "keep-alive")

WHAT = {
    "crl-no-reload": "a new CRL on disk, nginx not reloaded",
    "crl-reload": "a new CRL, nginx reloaded (lab client revoke)",
    "ocsp": "OCSP, no cache: asked at every full handshake",
    "ocsp-cache": "OCSP with ssl_ocsp_cache: an answer kept until its nextUpdate",
    "short-lived": "nothing revoked: the certificate ends (lab client add --ttl)",
}


@dataclass
class Outcome:
    kind: Kind
    refused_after: float | None     # seconds from the revocation (or from issue, short-lived) to the first refusal
    how: str = ""                   # "HTTP 400 (certificate revoked)", "connection closed", "still admitted"
    resumed: bool | None = None     # resumed session: did the server take the session (None: not asked)


@dataclass
class Race:
    mode: Mode
    what: str
    waited: float                   # the bound of this mode's wait, seconds
    outcomes: list[Outcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Answer:
    status: int | None              # None: no HTTP answer (closed, reset, TLS alert)
    verdict: str = ""
    resumed: bool = False


class _Client:
    """Requests as one student over real connections: a kept-alive one, and sessions to resume."""

    def __init__(self, host: str, port: int, ca_file: Path, cert: Path, key: Path):
        self.host, self.port = host, port
        self.ctx = ssl.create_default_context(cafile=str(ca_file))
        self.ctx.load_cert_chain(str(cert), str(key))
        self.session: ssl.SSLSession | None = None
        self.kept: ssl.SSLSocket | None = None

    def _connect(self, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        raw = socket.create_connection((self.host, self.port), timeout=3)
        try:
            return self.ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        except BaseException:
            raw.close()
            raise

    @staticmethod
    def _get(tls: ssl.SSLSocket, keep: bool) -> _Answer:
        tls.sendall(f"GET /{layout.HELLO_FILE} HTTP/1.1\r\nHost: localhost\r\nConnection: "
                    f"{'keep-alive' if keep else 'close'}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                return _Answer(None, "connection closed")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = tls.recv(4096)
            if not chunk:
                break
            body += chunk
        return _Answer(int(lines[0].split()[1]), headers.get("x-client-verify", ""))

    def full(self) -> _Answer:
        try:
            with self._connect() as tls:
                answer = self._get(tls, keep=False)
                self.session = self.session or tls.session
                return answer
        except (OSError, ssl.SSLError) as e:
            return _Answer(None, f"no answer ({e.__class__.__name__})")

    def resumed(self) -> _Answer:
        try:
            with self._connect(self.session) as tls:
                answer = self._get(tls, keep=False)
                answer.resumed = bool(tls.session_reused)
                return answer
        except (OSError, ssl.SSLError) as e:
            return _Answer(None, f"no answer ({e.__class__.__name__})")

    def open_kept(self) -> _Answer:
        self.kept = self._connect()
        return self._get(self.kept, keep=True)

    def on_kept(self) -> _Answer:
        if self.kept is None:
            return _Answer(None, "connection closed")
        try:
            return self._get(self.kept, keep=True)
        except (OSError, ssl.SSLError):
            return _Answer(None, "connection closed")

    def close(self) -> None:
        if self.kept is not None:
            self.kept.close()


def _told(answer: _Answer) -> str:
    if answer.status is None:
        return answer.verdict
    return f"HTTP {answer.status}" + (f" ({answer.verdict})" if answer.verdict and answer.status != 200 else "")


def measure(client: _Client, revoke: Callable[[], None], bound: float, tick: float = 0.25) -> list[Outcome]:
    """Each kind of connection admitted first (else the race cannot start), then `revoke()`, then each asked
    every `tick` until refused or `bound` seconds have passed."""
    first = client.full()
    kept = client.open_kept()
    again = client.resumed()
    if first.status != 200 or kept.status != 200 or again.status != 200:
        raise RuntimeError(f"the student was not admitted before the revocation ({_told(first)})")
    kinds: dict[Kind, Callable[[], _Answer]] = {"full handshake": client.full, "resumed session": client.resumed,
                                                "keep-alive": client.on_kept}
    outcomes = {k: Outcome(k, None, "still admitted", again.resumed if k == "resumed session" else None)
                for k in KINDS}
    revoke()
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        for kind, ask in kinds.items():
            done = outcomes[kind]
            if done.refused_after is not None:
                continue
            answer = ask()
            if kind == "resumed session" and answer.status is not None:
                done.resumed = answer.resumed
            if answer.status != 200:
                done.refused_after, done.how = round(time.monotonic() - start, 2), _told(answer)
        if all(o.refused_after is not None for o in outcomes.values()) or elapsed >= bound:
            break
        time.sleep(tick)
    for o in outcomes.values():
        if o.refused_after is None:
            o.how = f"still admitted after {bound:g} s"
    return [outcomes[k] for k in KINDS]
