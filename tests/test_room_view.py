"""lab room: who has connected, read from the mTLS server's access log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import REPO, ok, run
from lab.teach import room


CA = "CN=lab Client CA 1a2b3c,OU=lab,O=mtls-lab"


def line(addr, dn, verdict, status=200, when="28/Nov/2026:09:00:00 +0000", serial="-", issuer=CA):
    return (f'{addr} [{when}] "GET /hello-world.txt HTTP/1.1" {status} 98 tls=TLSv1.3 '
            f'cipher=TLS_AES_256_GCM_SHA384 client_verify={verdict} client_dn="{dn}" '
            f'client_serial={serial} client_issuer="{issuer}"')


ROSTER = room.Roster(["ann", "bob", "cid"], CA, {0x7A01: "ann", 0x7B01: "bob", 0x7B02: "bob", 0x7C01: "cid"})


def test_the_log_read_per_student():
    lines = [line("10.0.0.5", "CN=ann,OU=lab,O=mtls-lab", "SUCCESS", serial="7A01"),
             line("10.0.0.6", "CN=bob,OU=lab,O=mtls-lab", "FAILED:certificate revoked", 400, serial="7B01"),
             line("10.0.0.7", "CN=ann,OU=other,O=mtls-lab", "SUCCESS", serial="7A01",
                  issuer="CN=other Client CA,OU=other,O=mtls-lab"),                       # another lab's ann
             line("10.0.0.8", "-", "NONE", 400),
             "2026/11/28 09:00:00 [notice] 1#1: start worker processes",
             line("10.0.0.9", "CN=ann,OU=lab,O=mtls-lab", "SUCCESS", when="28/Nov/2026:09:05:00 +0000", serial="7a01")]
    found = room.read(lines, ROSTER)
    data = found.to_dict()
    assert data["connected"] == 1 and data["total"] == 3
    ann, bob, cid = data["students"]
    assert ann == {"name": "ann", "display": "ann", "connected": True, "requests": 2, "last_verdict": "SUCCESS",
                   "last_seen": "2026-11-28T09:05:00+00:00", "address": "10.0.0.9"}
    assert bob["connected"] is False and bob["last_verdict"] == "FAILED:certificate revoked"
    assert cid["requests"] == 0 and cid["last_seen"] is None
    assert found.others == 2


def test_a_stranger_with_a_students_name_is_not_the_student():
    """A self-signed certificate with subject /O=mtls-lab/OU=lab/CN=cid (even one that copies cid's serial and
    the CA's name as its issuer) changed cid's requests, verdict, address and last seen."""
    lines = [line("10.0.0.66", "CN=cid,OU=lab,O=mtls-lab", "FAILED:self-signed certificate", 400, serial="99"),
             line("10.0.0.66", "CN=cid,OU=lab,O=mtls-lab", "FAILED:certificate signature failure", 400, serial="7C01"),
             line("10.0.0.66", "CN=cid,OU=lab,O=mtls-lab", "FAILED:unable to verify the first certificate", 400,
                  serial="7C01")]
    found = room.read(lines, ROSTER)
    assert found.students["cid"].requests == 0 and found.students["cid"].address is None
    assert found.others == 3


def test_no_roster_is_an_error(rendered):
    result = run("room", *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.exit_code == 2 and "no students in this lab yet" in result.output


def student_curl(lab, name: str) -> subprocess.CompletedProcess:
    """A request as a student makes it: curl with their certificate (not lab's own request)."""
    folder = lab.dir / "clients" / name
    return subprocess.run(["curl", "-sS", "--cacert", str(lab.dir / "certs" / "server-ca.crt"), "--cert",
                           str(folder / f"{name}.crt"), "--key", str(folder / f"{name}.key"),
                           f"https://localhost:{lab.mtls_port}/hello-world.txt"], capture_output=True, text=True)


@pytest.mark.docker
def test_room_against_real_requests(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "dan", "eli", "fay", *lab.args()))
    student_curl(lab, "dan")
    ok(run("client", "revoke", "eli", *lab.args()))       # revoke proves eli's certificate refused: lab's request
    student_curl(lab, "eli")                              # eli tries: refused
    ok(run("verify", *lab.args("--as", "fay", "--scenario", "client-cert")))   # the instructor's check: not fay
    data = json.loads(ok(run("room", "--json", *lab.args())).stdout)
    by = {s["name"]: s for s in data["students"]}
    assert data["connected"] == 1 and data["total"] == 3
    assert by["dan"]["connected"] and by["dan"]["last_verdict"] == "SUCCESS" and by["dan"]["address"]
    assert not by["eli"]["connected"] and by["eli"]["last_verdict"] == "FAILED:certificate revoked"
    assert by["fay"]["requests"] == 0
    table = ok(run("room", *lab.args())).output
    assert "1 of 3 students connected" in table and "not seen yet: fay" in table


@pytest.mark.docker
def test_room_follow_refreshes_in_place_and_stops_on_ctrl_c(new_lab, tmp_path):
    """In a real terminal (tmux): the table changes in place when a student connects; Ctrl-C ends it, exit 0."""
    from helpers import need_tool

    tmux = need_tool("tmux", "tmux")
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "gus", *lab.args()))
    import uuid

    name, done = f"labroom{os.getpid()}-{uuid.uuid4().hex[:6]}", tmp_path / "exit-code"
    tmux = [tmux, "-L", name]          # a tmux server of its own (see tests/test_demo.py)
    command = " ".join([sys.executable, "-m", "lab", "room", "--follow", *map(str, lab.args())])
    subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "120", "-y", "30", "-e", f"PYTHONPATH={REPO}",
                    f"{command}; echo $? > {done}; sleep 30"], check=True)

    def screen():
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout

    def wait_for(text):
        deadline = time.monotonic() + 20
        while text not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.1)

    try:
        wait_for("0 of 1 students connected")
        student_curl(lab, "gus")
        wait_for("1 of 1 students connected")
        assert screen().count("students connected") == 1          # in place, not scrolled
        subprocess.run([*tmux, "send-keys", "-t", name, "C-c"], check=True)
        deadline = time.monotonic() + 20
        while not done.exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert done.read_text().strip() == "0" and "Traceback" not in screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


@pytest.mark.docker
@pytest.mark.faults
def test_a_self_signed_kim_is_not_kim_against_the_real_server(new_lab, tmp_path):
    """The reproduction from the issue, for real: a stranger's self-signed certificate with kim's subject."""
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "kim", *lab.args()))
    key, crt = tmp_path / "fake.key", tmp_path / "fake.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", f"/O=mtls-lab/OU={lab.name}/CN=kim",
                    "-addext", "extendedKeyUsage=clientAuth"], check=True, capture_output=True)
    ca = str(lab.dir / "certs" / "server-ca.crt")
    url = f"https://localhost:{lab.mtls_port}/hello-world.txt"
    fake = subprocess.run(["curl", "-sS", "-i", "--cacert", ca, "--cert", str(crt), "--key", str(key), url],
                          capture_output=True, text=True)
    assert "400" in fake.stdout.splitlines()[0]
    by = {s["name"]: s for s in json.loads(ok(run("room", "--json", *lab.args())).stdout)["students"]}
    assert by["kim"]["requests"] == 0 and by["kim"]["address"] is None
    folder = lab.dir / "clients" / "kim"
    real = subprocess.run(["curl", "-sS", "--cacert", ca, "--cert", str(folder / "kim.crt"), "--key",
                           str(folder / "kim.key"), url], capture_output=True, text=True)
    assert real.returncode == 0
    by = {s["name"]: s for s in json.loads(ok(run("room", "--json", *lab.args())).stdout)["students"]}
    assert by["kim"]["connected"] and by["kim"]["requests"] == 1


def test_labs_own_requests_and_a_rehearsal_are_not_the_class():
    """The instructor's `lab verify --as alice` marked alice connected; rehearsal traffic counted."""
    import datetime as dt

    own = line("10.0.0.5", "CN=ann,OU=lab,O=mtls-lab", "SUCCESS", serial="7A01") + ' agent="mtls-lab-verify"'
    rehearsal = line("10.0.0.6", "CN=bob,OU=lab,O=mtls-lab", "SUCCESS", serial="7B01",
                     when="28/Nov/2026:08:00:00 +0000") + ' agent="curl/8.14.1"'
    class_time = line("10.0.0.7", "CN=cid,OU=lab,O=mtls-lab", "SUCCESS", serial="7C01",
                      when="28/Nov/2026:09:30:00 +0000") + ' agent="Mozilla/5.0"'
    since = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.timezone.utc)
    found = room.read([own, rehearsal, class_time], room.Roster(ROSTER.names, CA, ROSTER.serials, since))
    assert {n: s.requests for n, s in found.students.items()} == {"ann": 0, "bob": 0, "cid": 1}
    assert found.connected == 1


def test_since_takes_a_clock_time_or_an_iso_time():
    from lab.app.students import since_time
    from lab.core.errors import UsageError

    assert since_time("09:30").hour == 9 and since_time("09:30").tzinfo is not None
    assert since_time("2026-12-02T09:30+01:00").utcoffset().total_seconds() == 3600
    with pytest.raises(UsageError, match="give HH:MM"):
        since_time("after lunch")


def test_thirty_students_on_an_80x24_projector(monkeypatch, capsys):
    """Names were cut (`Alice_Mart…`) and --follow showed 16 of 30 students on a 24-line screen."""
    from lab.views import room as view

    monkeypatch.setenv("COLUMNS", "80")
    names = ["José_Núñez", "Alice_Martin", "Liam_OConnor", "Amelie_Poulain"] + [f"student{i:02d}" for i in range(26)]
    found = room.start(room.Roster(names, CA, {}))
    found.students["Alice_Martin"].connected, found.students["Alice_Martin"].requests = True, 1
    view.room(found)
    shown = capsys.readouterr().out
    lines = shown.rstrip("\n").splitlines()
    assert len(lines) <= 24 and "…" not in shown and all(len(line.rstrip()) <= 80 for line in lines)
    assert "1 of 30 students connected" in lines[0] and "✓ Alice_Martin" in shown
    assert all(name in shown for name in names)


# The one pattern lab room read each line with before its lines were read in two parts (head, then a rest
# judged once per distinct text): the oracle for the two parts.
_ONE_PATTERN = __import__("re").compile(
    r'^(?P<addr>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) \d+ '
    r'tls=\S* cipher=\S* client_verify=(?P<verdict>.*?) client_dn="(?P<dn>[^"]*)"'
    r' client_serial=(?P<serial>\S*) client_issuer="(?P<issuer>[^"]*)"'
    r'(?: agent="(?P<agent>[^"]*)")?\s*$')


def _room_lines() -> list[str]:
    """A varied log: students, a revoked one, strangers, lab's own requests, notices, and lines that only nearly
    are requests."""
    from lab.core import layout

    good = line("10.0.0.5", "CN=ann,OU=lab,O=mtls-lab", "SUCCESS", serial="7A01")
    lines = [good, good + f' agent="{layout.OWN_AGENT}/1.0"', good + ' agent="curl/8.11"', good + "  ",
             line("10.0.0.6", "CN=bob", "FAILED:certificate revoked", 400, serial="7B01"),
             line("10.0.0.6", "CN=bob", "FAILED:certificate has expired", 400, serial="7B02", when="28/Nov/2026:10:00:00 +0000"),
             line("10.0.0.7", "-", "NONE", 400), line("[::1]", "CN=cid", "SUCCESS", serial="7C01"),
             line("10.0.0.8", "CN=cid", "FAILED:self-signed certificate", 400, serial="7C01"),
             "2026/11/28 09:00:00 [notice] 1#1: start worker processes", "", "garbage",
             good.replace(" [", "  ["), good.replace("] \"", "]\""), good.replace(" 200 ", " 20 "),
             good.replace("client_dn=", "client_dn ="), good[:-1], good.replace("09:00:00", "09:00:00]x"),
             line("10.0.0.9", 'CN=a\\x22b', "SUCCESS", serial="7A01", when="28/Nov/2026:09:30:00 +0000")]
    return lines * 3


def test_the_two_part_reading_accepts_exactly_the_lines_the_one_pattern_did():
    for text in _room_lines():
        head = room._HEAD.match(text)
        rest = room._REST.match(text[head.end():]) if head else None
        one = _ONE_PATTERN.match(text)
        assert (rest is not None) == (one is not None), text
        if one:
            assert (head.groups(), rest.groups()) == (one.group("addr", "time"),
                                                      one.group("verdict", "serial", "issuer", "agent")), text


def test_what_lab_room_remembers_of_each_line_changes_nothing_it_reports(monkeypatch):
    """The rests remembered per room (bounded: forgotten all at once past a count) give the same room as none."""
    import datetime as dt

    since = room.Roster(ROSTER.names, CA, ROSTER.serials, dt.datetime(2026, 11, 28, 9, 15, tzinfo=dt.timezone.utc))
    for roster, ann, bob in ((ROSTER, 3 * 4, 3 * 2), (since, 3, 3)):
        remembered = room.read(_room_lines(), roster)
        monkeypatch.setattr(room, "_KNOWN_RESTS", 1)         # forgets at every new rest
        forgetful = room.read(_room_lines(), roster)
        monkeypatch.undo()
        assert remembered.to_dict() == forgetful.to_dict() and remembered.others == forgetful.others
        assert (remembered.students["ann"].requests, remembered.students["bob"].requests) == (ann, bob)
