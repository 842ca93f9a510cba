"""On the projector: a lab in room mode with a class of thirty (long display names included), each command
an instructor shows run in a real terminal (tmux) at 80×24 and at 100×30. Each output fits the screen
without scrolling (its first line still at the top) and every fact is on it whole: each port, each
verdict, each student's full name; no "…" anywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import need_tool, ok, run

REPO = Path(__file__).resolve().parent.parent
CLASS = ["José Núñez", "陈美玲", "Liam O'Connor", "Amélie Poulain", "Ольга Петрова", "Zoë Ng", "Søren Ærø",
         "Đặng Thị Hoa", "김민준", "Maria Garcia", "Alice Martin", "Nguyễn Văn An", "Björk Guðmundsdóttir",
         "François-Xavier Dupont-Aignan", "Siobhán Ní Bhriain", "Łukasz Żółć", "Χρήστος Παπαδόπουλος",
         "Ayşe Yılmaz", "Antonín Dvořák", "João Conceição", "Mỹ Linh", "Ömer Çelik", "Renée O’Brien",
         "Jürgen Groß", "İbrahim Şahin", "佐藤 花子", "Maximilian von Hohenzollern-Sigmaringen",
         "Anna-Katharina Müller-Lüdenscheidt", "Kim", "Ana Lima"]


@pytest.fixture(scope="module")
def room_lab(module_lab, tmp_path_factory):
    lab = module_lab("labtest-projector")
    ok(run("up", "--bind", "0.0.0.0", *lab.args()))          # room mode; requests still go to loopback only
    roster = tmp_path_factory.mktemp("class") / "class.txt"
    roster.write_text("\n".join(CLASS) + "\n", encoding="utf-8")
    ok(run("client", "add", "--from-file", roster, *lab.args()))
    ok(run("client", "revoke", "Kim", *lab.args()))            # the revoked scenario too
    ok(run("verify", "--as", "jose-nunez", *lab.args()))       # lab's own requests: nobody is "connected"
    return lab


def screen(command: list[str], cols: int, rows: int, cwd: Path) -> str:
    """The command run as a tmux session of its own (a server of its own, -L), at cols×rows: its screen."""
    tmux = need_tool("tmux", "tmux")
    name = f"labproj{os.getpid()}-{uuid.uuid4().hex[:6]}"
    done = cwd / f".done-{name}"
    # The terminal's own width: not the COLUMNS the test suite sets for itself (tmux passes its environment on).
    shell = "env -u COLUMNS -u LINES " + " ".join(f"'{c}'" for c in command) + f"; touch {done}; sleep 60"
    env = ["-e", f"PYTHONPATH={REPO}", "-e", "NO_COLOR=1", "-e", "LANG=C.UTF-8", "-e", "LC_ALL=C.UTF-8"]
    subprocess.run([tmux, "-L", name, "new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), *env,
                    "-c", str(cwd), shell], check=True)
    try:
        deadline = time.monotonic() + 120
        while not done.exists():
            assert time.monotonic() < deadline, "the command did not finish"
            time.sleep(0.2)
        time.sleep(0.3)
        return subprocess.run([tmux, "-L", name, "capture-pane", "-p", "-t", name], capture_output=True,
                              text=True).stdout
    finally:
        subprocess.run([tmux, "-L", name, "kill-server"], capture_output=True)
        done.unlink(missing_ok=True)


def lab_cmd(lab, *args: str) -> list[str]:
    return [sys.executable, "-m", "lab", *args, *lab.args()]


@pytest.mark.docker
@pytest.mark.parametrize("cols,rows", [(80, 24), (100, 30)])
def test_every_projected_command_fits_and_cuts_nothing(room_lab, cols, rows):
    lab = room_lab
    cwd = lab.dir.parent
    flat = lambda text: re.sub(r"\s+", " ", text)     # noqa: E731  (a DN may wrap; a fact is whole on a line)
    checks = {
        ("status",): (f"lab {lab.name}", [f"0.0.0.0:{lab.tls_port}", f"0.0.0.0:{lab.mtls_port}"]),
        ("verify",): (None, ["FAILED:certificate has expired", "FAILED:unsuitable certificate purpose",
                             "FAILED:certificate revoked", "Hostname mismatch"]),
        ("handshake",): ("Handshake of client-cert", [f":{lab.mtls_port}", "TLSv1.3", "CertificateRequest",
                                                      "close_notify"]),
        ("handshake", "--tls", "1.2"): ("Handshake of client-cert", [f":{lab.mtls_port}", "TLSv1.2", "ChangeCipherSpec",
                                                                    "ServerHelloDone"]),
        ("room",): ("0 of 30 students connected", CLASS),
        ("client", "list"): ("30 student(s): 29 valid, 1 revoked", CLASS),
    }
    for args, (first, facts) in checks.items():
        shown = screen(lab_cmd(lab, *args), cols, rows, cwd)
        lines = shown.rstrip("\n").splitlines()
        assert len(lines) <= rows, shown
        if first is not None:          # still at the top: nothing scrolled away
            assert lines and lines[0].startswith(first), (args, shown)
        assert "…" not in shown, (args, shown)
        for fact in facts:
            if args in (("room",), ("client", "list")) or args[0] == "verify" or f":{lab.mtls_port}" == fact:
                assert fact in shown, (args, fact, shown)          # whole, on one line
            else:
                assert fact in shown or fact in flat(shown), (args, fact, shown)
        if args == ("verify",):
            assert len(lines) < rows and "✗" not in shown, shown


def test_certs_and_exercises_on_the_projector_cut_nothing(rendered, monkeypatch):
    """`lab certs` at 80 columns: a line per certificate, every file whole; `lab exercise list`: every id whole
    (its "checked with" column ended in `exercise/partner-student…`)."""
    ok(run("client", "add", "José Núñez", "Maria Garcia", *rendered.args()))
    narrow = {"COLUMNS": "80", "DOCKER_HOST": "unix:///nonexistent.sock"}
    certs = ok(run("certs", *rendered.args(), env=narrow)).output
    lines = certs.splitlines()[1:]          # under the title (the lab's folder, a long path here: it may wrap)
    assert "…" not in certs and max(len(line.rstrip()) for line in lines) <= 80 and len(lines) <= 23, certs
    for shown in ("certs/server-ca.crt", "certs/client-ca.crt", "certs/server.crt", "demo-certs/wrong-purpose.crt",
                  "clients/jose-nunez/", "José Núñez", "expired", "server-ca", "client-ca", "rogue-ca"):
        assert shown in certs, shown
    wide = ok(run("--wide", "certs", *rendered.args(), env=narrow)).output
    assert "sha-256" in wide and "key usage" in wide
    monkeypatch.delenv("LAB_WIDE")        # `lab --wide` sets it for its process: this one is the test's
    exercises = ok(run("exercise", "list", *rendered.args(), env=narrow)).output
    lines = exercises.splitlines()
    assert "…" not in exercises and len(lines) <= 23 and max(len(line.rstrip()) for line in lines) <= 80, exercises
    assert "lab --wide exercise list" in exercises and "checked with" not in exercises
    for ex in ("verification-optional", "trusts-the-server-ca", "verify-depth", "crl-expired", "client-purpose"):
        assert ex in exercises
    assert "exercise/partner-student" in ok(run("--wide", "exercise", "list", *rendered.args(), env=narrow)).output
