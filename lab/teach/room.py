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

# A request's line in two parts: who and when, then the rest. The rest repeats (a student's requests differ in
# their address and time only), so it is matched once per distinct text: a room's 100,000 lines in a third of
# the time. Together the two patterns match exactly the lines one pattern would (the first space ends the
# address, the first "]" the time). Only what is used is captured; nginx writes a quote inside a field as \x22,
# so no field holds one.
_HEAD = re.compile(r'(\S+) \[([^\]]+)\] "')
_REST = re.compile(r'[^"]*" \d{3} \d+ tls=\S* cipher=\S* client_verify=([^"]*?) client_dn="[^"]*"'
                   r' client_serial=(\S*) client_issuer="([^"]*)"(?: agent="([^"]*)")?\s*$')
_KNOWN_RESTS = 20_000      # distinct rests remembered (then forgotten all at once): memory stays bounded
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
    rests: dict = field(default_factory=dict, repr=False, compare=False)   # a line's rest -> _judge's verdict on it

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


# What a line's rest says, judged once per distinct rest: not a request, lab's own request, or (student or None,
# verdict); the student only when the verdict is one the CA's signature stands behind.
_NOT_A_REQUEST, _LABS_OWN = "not a request", "lab's own"


def _judge(rest: str, roster: Roster) -> str | tuple[str | None, str]:
    m = _REST.match(rest)
    if m is None:
        return _NOT_A_REQUEST
    verdict, serial_text, issuer, agent = m.groups()
    if agent and agent.startswith(layout.OWN_AGENT):
        return _LABS_OWN          # verify, --as, a revocation's proof, a handshake
    serial = _serial(serial_text)
    name = roster.serials.get(serial) if serial is not None and issuer == roster.issuer else None
    return (name if name and verdict in _CREDITED else None), verdict


def add(room: Room, line: str, roster: Roster) -> None:
    """Count one log line (lines that are not requests, e.g. nginx's notices, are passed over)."""
    head = _HEAD.match(line)
    if head is None:
        return          # not a request
    rest = line[head.end():]
    judged = room.rests.get(rest)
    if judged is None:
        if len(room.rests) >= _KNOWN_RESTS:
            room.rests.clear()
        judged = room.rests[rest] = _judge(rest, roster)
    if isinstance(judged, str):
        return          # not a request, or lab's own
    addr, time = head.groups()
    if roster.since is not None:
        when = _time(time)
        if when is not None and when < roster.since:
            return
    name, verdict = judged
    seen = room.students.get(name) if name else None
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
