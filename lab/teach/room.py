"""Who has connected: the mTLS server's access log, read per student.

Each line of nginx's access log (log_format `lab` in templates/nginx-base.conf.j2)
carries the client's address, the time, the status, nginx's verdict on the
client certificate and its subject; a student is recognised by the common
name of a certificate from this lab's client CA (OU = the lab's name). No
Docker here: lab/app/students.py hands the lines in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

_LINE = re.compile(r'^(?P<addr>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) \d+ '
                   r'tls=\S* cipher=\S* client_verify=(?P<verdict>.*?) client_dn="(?P<dn>[^"]*)"\s*$')
_CN = re.compile(r"(?:^|,)CN=([^,]+)")
_OU = re.compile(r"(?:^|,)OU=([^,]+)")


@dataclass
class Seen:
    name: str
    connected: bool = False          # at least one request with a certificate the server verified
    requests: int = 0
    last_verdict: str | None = None
    last_seen: str | None = None     # ISO 8601
    address: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "connected": self.connected, "requests": self.requests,
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


def _iso(nginx_time: str) -> str:
    try:
        return dt.datetime.strptime(nginx_time, "%d/%b/%Y:%H:%M:%S %z").isoformat()
    except ValueError:
        return nginx_time


def start(roster: list[str]) -> Room:
    return Room({name: Seen(name) for name in roster})


def add(room: Room, line: str, lab_name: str) -> None:
    """Count one log line (lines that are not requests, e.g. nginx's notices, are passed over)."""
    m = _LINE.match(line)
    if not m:
        return
    dn = m.group("dn")
    cn, ou = _CN.search(dn), _OU.search(dn)
    seen = room.students.get(cn.group(1)) if cn and ou and ou.group(1) == lab_name else None
    if seen is None:
        room.others += 1
        return
    seen.requests += 1
    seen.last_verdict = m.group("verdict")
    seen.last_seen = _iso(m.group("time"))
    seen.address = m.group("addr")
    seen.connected = seen.connected or m.group("verdict") == "SUCCESS"


def read(lines, roster: list[str], lab_name: str) -> Room:
    room = start(roster)
    for line in lines:
        add(room, line, lab_name)
    return room
