"""Who has connected: the mTLS server's access log, read per student.

Each line of nginx's access log (log_format `lab` in templates/nginx-base.conf.j2)
carries the client's address, the time, the status, nginx's verdict on the
client certificate, its subject, serial and issuer. A student is recognised by
the issuer and serial of a certificate this lab's client CA issued them (the
CA database says which), never by the name in a subject: anyone can make a
certificate that says CN=kim, and a request with it is counted as a stranger's.
Only a verdict the CA's signature stands behind (SUCCESS, or the certificate
expired or revoked) is credited to the student. No Docker here:
lab/app/students.py hands the lines in.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from lab.core import layout

# Only what is used is captured (a third faster over a room's 100,000 lines); nginx writes a quote inside a field
# as \x22, so no field holds one.
_LINE = re.compile(r'^(?P<addr>\S+) \[(?P<time>[^\]]+)\] "[^"]*" \d{3} \d+ '
                   r'tls=\S* cipher=\S* client_verify=(?P<verdict>[^"]*?) client_dn="[^"]*"'
                   r' client_serial=(?P<serial>\S*) client_issuer="(?P<issuer>[^"]*)"'
                   r'(?: agent="(?P<agent>[^"]*)")?\s*$')
# Verdicts reached after the CA's signature was checked: they are about this very certificate.
_CREDITED = ("SUCCESS", "FAILED:certificate has expired", "FAILED:certificate revoked")


@dataclass
class Seen:
    name: str                        # the login
    connected: bool = False          # at least one request with a certificate the server verified
    requests: int = 0
    last_verdict: str | None = None
    last_seen: str | None = None     # ISO 8601
    address: str | None = None
    display: str = ""                # the name as the class list writes it

    @property
    def shown(self) -> str:
        return self.display or self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "display": self.shown, "connected": self.connected, "requests": self.requests,
                "last_verdict": self.last_verdict, "last_seen": self.last_seen, "address": self.address}


@dataclass
class Room:
    students: dict = field(default_factory=dict)     # name -> Seen, for every student of the roster
    others: int = 0                                  # requests without a certificate of this lab's students

    @property
    def connected(self) -> int:
        return sum(1 for s in self.students.values() if s.connected)

    @property
    def total(self) -> int:
        return len(self.students)

    def to_dict(self) -> dict:
        return {"students": [s.to_dict() for s in self.students.values()], "connected": self.connected,
                "total": self.total}


# A room's log has many requests in the same second: each time is parsed once (strptime was half of lab room).
@functools.lru_cache(maxsize=8192)
def _time(nginx_time: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(nginx_time, "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _iso(nginx_time: str) -> str:
    when = _time(nginx_time)
    return when.isoformat() if when is not None else nginx_time


@dataclass(frozen=True)
class Roster:
    """The students, and how to know their certificates: the client CA's subject and every serial it
    issued to each of them (re-issued students have several)."""

    names: list[str]
    issuer: str                          # the client CA's subject, as nginx writes it (RFC 2253)
    serials: dict[int, str]              # serial -> student
    since: dt.datetime | None = None     # earlier requests (a rehearsal) are left out
    displays: dict[str, str] = field(default_factory=dict)   # login -> display name


def start(roster: Roster) -> Room:
    return Room({name: Seen(name, display=roster.displays.get(name, "")) for name in roster.names})


def _serial(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


def add(room: Room, line: str, roster: Roster) -> None:
    """Count one log line (lines that are not requests, e.g. nginx's notices, are passed over)."""
    m = _LINE.match(line)
    if not m:
        return          # not a request
    addr, time, serial_text, issuer, verdict, agent = m.group("addr", "time", "serial", "issuer", "verdict", "agent")
    if agent and agent.startswith(layout.OWN_AGENT):
        return          # lab's own (verify, --as, a revocation's proof, a handshake)
    if roster.since is not None:
        when = _time(time)
        if when is not None and when < roster.since:
            return
    serial = _serial(serial_text)
    name = roster.serials.get(serial) if serial is not None and issuer == roster.issuer else None
    seen = room.students.get(name) if name and verdict in _CREDITED else None
    if seen is None:
        room.others += 1
        return
    seen.requests += 1
    seen.last_verdict = verdict
    seen.last_seen = _iso(time)
    seen.address = addr
    seen.connected = seen.connected or verdict == "SUCCESS"


def read(lines: Iterable[str], roster: Roster) -> Room:
    room = start(roster)
    for line in lines:
        add(room, line, roster)
    return room
