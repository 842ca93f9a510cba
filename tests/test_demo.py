"""lab demo, driven in a real terminal (tmux): each step's title, command and output on one 80x24
screen, the process waiting between steps, b back, q quit with exit 0; --auto 0 in a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from helpers import REPO, need_tool, ok, run
from lab.teach import demo

pytestmark = pytest.mark.docker
STEPS = demo.load()


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-demo", "mtls-lab")
    return lab


def demo_cmd(lab, *extra) -> list[str]:
    return [sys.executable, "-m", "lab", "demo", "--dir", str(lab.dir), "--name", lab.name, *extra]


def test_auto_0_runs_every_step_in_a_pipe_within_80_columns(lab):
    proc = subprocess.run(demo_cmd(lab, "--auto", "0"), cwd=lab.dir.parent, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    for i, title in enumerate(demo.titles(STEPS), 1):
        title = title.replace("8888", str(lab.tls_port)).replace("8889", str(lab.mtls_port))
        assert f"{i}/{len(STEPS)}  {title}" in proc.stdout
    assert "expected to see" not in proc.stdout            # every step showed what it is about
    for seen in ("Hello, world!", "HTTP/1.1 400", "No required SSL certificate was sent", "CertificateRequest",
                 "FAILED:certificate revoked", "$ curl -sS --cacert mtls-lab/certs/server-ca.crt"):
        assert seen in proc.stdout, seen
    assert "/tmp" not in "".join(line for line in lines if line.startswith("$"))   # paths as typed from here


def test_a_closed_pipe_ends_the_demo_without_error(lab):
    cmd = " ".join(f"'{a}'" for a in demo_cmd(lab, "--auto", "0"))
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -3"], cwd=lab.dir.parent, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines()[0].strip().startswith(f"1/{len(STEPS)}")


def test_list_and_from(lab):
    listed = ok(run("demo", "--list")).output.splitlines()
    assert len(listed) == len(STEPS) and listed[0].startswith(" 1. Two certificate authorities")
    bad = run("demo", "--from", "99", "--dir", lab.dir)
    assert bad.exit_code == 2 and f"steps 1 to {len(STEPS)}" in bad.output
    proc = subprocess.run(demo_cmd(lab, "--auto", "0", "--from", str(len(STEPS) - 1)), cwd=lab.dir.parent,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and f"{len(STEPS) - 1}/{len(STEPS)}" in proc.stdout
    assert f"1/{len(STEPS)}" not in proc.stdout


class Tmux:
    """A tmux of the test's own (its own server, -L): a session ended by one test never races with the
    next test's new one on a server that is just exiting ("server exited unexpectedly", seen in CI)."""

    def __init__(self, tmux, name):
        self.tmux, self.name = [tmux, "-L", name], name

    def capture(self, escapes: bool = False) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen and "Enter:" in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.capture()}")


@pytest.fixture
def terminal(lab, tmp_path):
    tmux = need_tool("tmux", "tmux")
    import uuid

    term = Tmux(tmux, f"labdemo{os.getpid()}-{uuid.uuid4().hex[:6]}")
    done = tmp_path / "exit-code"
    command = " ".join(demo_cmd(lab)) + f"; echo $? > {done}; sleep 30"
    env = ["-e", f"PYTHONPATH={REPO}", "-e", "NO_COLOR=1"]
    subprocess.run([*term.tmux, "new-session", "-d", "-s", term.name, "-x", "80", "-y", "24", *env, "-c",
                    str(lab.dir.parent), command], check=True)
    yield term, done
    subprocess.run([*term.tmux, "kill-server"], capture_output=True)


def test_a_real_terminal_step_by_step(lab, terminal):
    term, done = terminal
    titles = [t.replace("8888", str(lab.tls_port)).replace("8889", str(lab.mtls_port)) for t in demo.titles(STEPS)]
    screen = term.wait_for(titles[0])
    assert "$ openssl x509 -in mtls-lab/certs/server-ca.crt -noout -text" in screen and "CA:TRUE" in screen
    time.sleep(1)
    assert titles[0] in term.capture() and not done.exists()            # it waits for the instructor
    term.keys("Enter")
    assert "Client CA" in term.wait_for(titles[1])
    term.keys("b")
    term.wait_for(titles[0])
    expected = {5: "Hello, world!", 9: "HTTP/1.1 400", 11: "CertificateRequest"}
    for i in range(1, len(STEPS)):
        term.keys("Enter")
        screen = term.wait_for(titles[i], timeout=90)     # the race starts a lab of its own
        lines = screen.rstrip("\n").splitlines()
        assert len(lines) <= 24 and lines[0].strip().startswith(f"{i + 1}/{len(STEPS)}"), screen   # one screen
        assert "$ " in screen
        if i in expected:
            assert expected[i] in screen, screen
        # NO_COLOR is set in this terminal: bold may stay, no colour at all.
        assert not re.search(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38)[;m]", term.capture(escapes=True))
    # The last step, the race, in a lab of its own: a line per mode within 80 columns.
    assert "crl-no-reload full in" in screen and "ocsp          full out@" in screen, screen
    term.keys("b")                      # back to the live revocation, and run it again: a second one
    term.wait_for(titles[-2])
    term.keys("r")
    screen = term.wait_for(f"{titles[-2]}  (run 2)")
    assert "certificate revoked" in screen and "expected to see" not in screen, screen
    term.keys("r", "q")                 # q typed while the step still runs: it quits once the step is shown
    assert wait_exit(done) == "0"
    screen = term.capture()
    assert f"{titles[-2]}  (run 3)" in screen and f"demo ended at step {len(STEPS) - 1} of {len(STEPS)}" in screen


def wait_exit(done, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.exists(), "the demo did not end"
    return done.read_text().strip()


def test_a_second_enter_typed_while_a_step_runs_does_not_skip_the_next(lab, terminal):
    term, done = terminal
    titles = [t.replace("8888", str(lab.tls_port)).replace("8889", str(lab.mtls_port)) for t in demo.titles(STEPS)]
    term.wait_for(titles[0])
    term.keys("Enter", "Enter")         # the second one arrives while step 2 runs
    term.wait_for(titles[1])
    time.sleep(1)
    assert titles[1] in term.capture() and not done.exists()
    term.keys("q")
    assert wait_exit(done) == "0"


def test_ctrl_c_ends_the_demo_cleanly(lab, terminal):
    term, done = terminal
    term.wait_for(demo.titles(STEPS)[0])
    term.keys("C-c")
    assert wait_exit(done) == "0"
    assert "Traceback" not in term.capture()


def test_the_demo_starts_a_lab_when_none_runs(new_lab, tmp_path):
    lab = new_lab()
    ok(run("render", *lab.args("--image", lab.image, "--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port)))
    proc = subprocess.run(demo_cmd(lab, "--auto", "0", "--from", str(len(STEPS) - 2)), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert f"no lab was running: started lab {lab.name}" in proc.stderr


def test_the_demo_says_first_when_the_lab_is_not_the_lesson(lab):
    ok(run("exercise", "start", "verification-optional", *lab.args()))
    try:
        proc = subprocess.run(demo_cmd(lab, "--auto", "0", "--from", str(len(STEPS))), cwd=lab.dir.parent,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        ok(run("exercise", "reset", *lab.args()))
    assert proc.returncode == 0, proc.stderr
    assert "exercise verification-optional is running in this lab" in proc.stderr
    assert "edited by hand: nginx-mtls/nginx.conf" in proc.stderr      # what the exercise changed, too
    clean = subprocess.run(demo_cmd(lab, "--auto", "0", "--from", str(len(STEPS))), cwd=lab.dir.parent,
                           capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert clean.returncode == 0 and "note:" not in clean.stderr, clean.stderr


def test_in_a_terminal_the_note_waits_and_q_leaves_before_any_step(lab, tmp_path):
    tmux = need_tool("tmux", "tmux")
    conf = lab.dir / "nginx-tls" / "hello-world.txt"
    conf.write_text(conf.read_text() + "edited live\n")
    done = tmp_path / "exit-code"
    term = Tmux(tmux, f"labdemonote{os.getpid()}-{tmp_path.name[-6:]}")
    command = " ".join(demo_cmd(lab)) + f"; echo $? > {done}; sleep 30"
    subprocess.run([*term.tmux, "new-session", "-d", "-s", term.name, "-x", "80", "-y", "24", "-e",
                    f"PYTHONPATH={REPO}", "-c", str(lab.dir.parent), command], check=True)
    try:
        deadline = time.monotonic() + 30
        while "start the demo all the same" not in term.capture():
            assert time.monotonic() < deadline, term.capture()
            time.sleep(0.1)
        assert "edited by hand: nginx-tls/hello-world.txt" in term.capture()
        term.keys("q")
        assert wait_exit(done) == "0"
        assert "demo not started" in term.capture() and f"1/{len(STEPS)}" not in term.capture()
    finally:
        subprocess.run([*term.tmux, "kill-server"], capture_output=True)
        ok(run("reset", "nginx-tls/hello-world.txt", *lab.args()))
        for copy in conf.parent.glob("hello-world.txt.edited-*"):
            copy.unlink()


def test_list_tells_the_labs_own_ports(rendered):
    """--list said 8888/8889 whatever the lab's ports."""
    listed = ok(run("demo", "--list", *rendered.args())).output
    assert f"The TLS server (port {rendered.tls_port})" in listed and f"(port {rendered.mtls_port})" in listed
    assert "(port 8888)" in ok(run("demo", "--list")).output       # no lab: the defaults
