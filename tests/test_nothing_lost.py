"""Nothing lost, nobody let in: revocations that are enforced (or fail loudly),
directories lab did not make are never deleted, one bad file never crashes the
lesson, interrupts say what really happened. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, ok, run
from lab.pki import ca, students

pytestmark = [pytest.mark.faults]

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def status_code(lab, student: str, folder: Path | None = None) -> int:
    """GET /whoami on the mTLS server with a student's own certificate (from their folder, or a copy
    of it elsewhere: a handout): 200 means admitted."""
    import http.client
    import ssl

    folder = folder or lab.dir / "clients" / student
    ctx = ssl.create_default_context(cafile=str(folder / "server-ca.crt"))
    ctx.load_cert_chain(str(folder / f"{student}.crt"), str(folder / f"{student}.key"))
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    try:
        conn.request("GET", "/whoami")
        return conn.getresponse().status
    finally:
        conn.close()


# --------------------------------------------------------------------------- revocations: enforced, or loud


@pytest.mark.docker
def test_revoke_while_paused_fails_loudly_and_up_enforces_it(new_lab, docker_client):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "dave", "erin", *lab.args()))
    mtls = docker_client.containers.get(f"{lab.name}-mtls")
    mtls.pause()
    try:
        result = run("client", "revoke", "dave", *lab.args())
    finally:
        mtls.unpause()
    assert result.exit_code == 6, result.output
    assert "still admits" in result.output and "paused" in result.output and "lab up" in result.output
    # Unpaused, the server still runs the old list: status and doctor say so.
    assert status_code(lab, "dave") == 200
    assert "mtls: runs an older revocation list (crl/client-ca.crl)" in run("status", *lab.args()).output
    checks = {c["name"]: c for c in json.loads(run("doctor", *lab.args("--json")).stdout)}
    assert not checks["revocation list"]["ok"] and "lab up" in checks["revocation list"]["fix"]
    # lab up brings the running server up to the CRL on disk.
    up = ok(run("up", *lab.args()))
    assert "reloaded      the mtls server, without downtime: it had an older crl/client-ca.crl" in up.output
    assert status_code(lab, "dave") == 400 and status_code(lab, "erin") == 200
    assert "both servers run the files in the lab directory" in ok(run("status", *lab.args())).output


@pytest.mark.docker
def test_a_paused_server_is_called_paused_and_nothing_false_is_said_of_it(new_lab, docker_client):
    """A paused container still holds what it loaded: status must not claim an older configuration,
    and every command that needs it running names the state (a stopped one is `lab up`'s to repair)."""
    lab = new_lab()
    ok(run(*lab.up_args()))
    mtls = docker_client.containers.get(f"{lab.name}-mtls")
    mtls.pause()
    try:
        status = run("status", *lab.args())
        handshake = run("handshake", "client-cert", *lab.args())
        reload = run("reload", "mtls", *lab.args())
    finally:
        mtls.unpause()
    assert status.exit_code == 1 and "mtls: paused: lab up repairs it" in status.output, status.output
    assert "older" not in status.output and "tls: " not in status.output.replace("mtls: ", "")
    for result in (handshake, reload):
        assert result.exit_code == 3 and f"the mtls server of lab {lab.name} is paused" in result.output, result.output
        assert "lab up" in result.output and "Traceback" not in result.output
    assert "both servers run the files in the lab directory" in ok(run("status", *lab.args())).output
    ok(run("down", *lab.args()))
    down = run("status", *lab.args())
    assert down.exit_code == 1 and down.output.count("lab up starts it") == 1, down.output


def test_a_student_whose_folder_was_deleted_is_not_forgotten(rendered):
    """Deleting clients/NAME does not take back a certificate handed out: the student stays listed
    (folder missing) until revoked, and a new one is not issued over it without --force."""
    ok(run("client", "add", "eve", "fay", *rendered.args()))
    shutil.rmtree(rendered.dir / "clients" / "eve")
    listed = ok(run("client", "list", *rendered.args()))
    assert "folder missing" in listed.output and "lab client revoke eve stops it" in listed.output
    again = run("client", "add", "eve", *rendered.args())
    assert again.exit_code == 2 and "whose folder is gone" in again.output and "lab client revoke eve" in again.output
    handed = ok(run("handout", "--all", *rendered.args()))
    assert "no handout for eve (folder missing)" in handed.output
    revoked = ok(run("client", "revoke", "eve", *rendered.args()))
    assert "revoked eve" in revoked.output
    index = (rendered.dir / "certs" / "client-ca-db" / "index.txt").read_text()
    assert [line.split("\t")[0] for line in index.splitlines() if line.endswith("/CN=eve")] == ["R"]
    assert "eve" not in ok(run("client", "list", *rendered.args())).output
    ok(run("client", "add", "eve", *rendered.args()))            # a new one, now that the old one is dead
    shutil.rmtree(rendered.dir / "clients" / "fay")               # and no signed request takes fay's name either
    key, csr = rendered.dir.parent / "fay.key", rendered.dir.parent / "fay.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-subj", "/CN=fay", "-out", str(csr)], check=True, capture_output=True)
    signed = run("client", "sign", csr, *rendered.args())
    assert signed.exit_code == 2 and "whose folder is gone" in signed.output and "lab client revoke fay" in signed.output


@pytest.mark.docker
def test_verify_names_a_missing_client_certificate_file(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    key = lab.dir / "certs" / "client.key"
    key.rename(key.with_name("client.key.away"))
    try:
        result = run("verify", *lab.args())
    finally:
        key.with_name("client.key.away").rename(key)
    assert result.exit_code == 5 and "certs/client.key is missing: the client-cert scenario needs it" in result.output
    assert "put it back; else `lab up --regenerate`" in result.output
    ok(run("verify", *lab.args()))


@pytest.mark.docker
def test_revoking_a_student_whose_folder_is_gone_refuses_the_copy_they_hold(new_lab, tmp_path):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "gus", *lab.args()))
    handout = tmp_path / "gus-laptop"
    shutil.copytree(lab.dir / "clients" / "gus", handout)       # what gus took home
    shutil.rmtree(lab.dir / "clients" / "gus")
    assert status_code(lab, "gus", handout) == 200
    revoked = ok(run("client", "revoke", "gus", *lab.args()))
    assert "reloaded without downtime the CRL that lists it" in revoked.output
    assert status_code(lab, "gus", handout) == 400


@pytest.mark.docker
def test_revoke_with_the_engine_away_fails_loudly_while_the_lab_runs(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "erin", *lab.args()))
    result = run("client", "revoke", "erin", *lab.args(), env=NO_ENGINE)
    assert result.exit_code == 4, result.output
    assert "still admits" in result.output and "cannot reach the Docker engine" in result.output
    assert status_code(lab, "erin") == 200          # what the message warned about
    ok(run("up", *lab.args()))
    assert status_code(lab, "erin") == 400


def test_revoke_of_a_lab_that_is_not_running_needs_no_engine(rendered):
    """Nothing answers on the lab's port: nothing can admit the student; the next start reads the CRL."""
    ok(run("client", "add", "fay", *rendered.args()))
    result = ok(run("client", "revoke", "fay", *rendered.args(), env=NO_ENGINE))
    assert "the lab is not running" in result.output


@pytest.mark.docker
def test_verify_checks_every_revoked_student(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "ann", "bea", *lab.args()))
    ok(run("client", "revoke", "ann", *lab.args()))
    assert run("client", "revoke", "bea", *lab.args(), env=NO_ENGINE).exit_code != 0   # not enforced
    result = run("verify", *lab.args("--json"))
    assert result.exit_code == 1
    revoked = {r["shows"].split("'")[0]: r["passed"] for r in json.loads(result.stdout) if r["scenario"] == "revoked"}
    assert revoked == {"ann": True, "bea": False}
    ok(run("up", *lab.args()))
    assert "15 passed, 0 failed" in ok(run("verify", *lab.args())).output


# --------------------------------------------------------------------------- down --purge deletes only a lab's own directory


@pytest.mark.docker
def test_purge_refuses_a_folder_that_is_not_a_lab(tmp_path):
    myproj = tmp_path / "myproj"
    myproj.mkdir()
    (myproj / "important.txt").write_text("keep")
    result = run("down", "--dir", myproj, "--name", "x", "--purge")
    assert result.exit_code == 2 and "not a lab directory" in result.output
    assert (myproj / "important.txt").read_text() == "keep"


@pytest.mark.docker
def test_purge_refuses_another_labs_directory(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    result = run("down", "--dir", lab.dir, "--name", "other", "--purge")
    assert result.exit_code == 2 and f"belongs to lab '{lab.name}'" in result.output
    assert (lab.dir / "lab.yml").is_file()
    ok(run("verify", *lab.args()))                      # and the lab it belongs to still runs
    ok(run("down", "--dir", lab.dir, "--purge"))
    assert not lab.dir.exists()


@pytest.mark.docker
def test_purge_deletes_only_what_lab_made(lab_params, tmp_path, monkeypatch, docker_client):
    """Round two: lab.yml naming the lab is not enough. A folder that holds anything lab did not make
    (a thesis, photos, a working folder rendered with --dir .) is refused, named, and kept whole."""
    lab = lab_params()
    lab.dir.mkdir()
    (lab.dir / "photos").mkdir()
    (lab.dir / "photos" / "cat.jpg").write_bytes(b"cat")
    (lab.dir / "thesis.txt").write_text("four years")
    ok(run("render", *lab.args("--image", lab.image, "--tls-port", lab.tls_port, "--mtls-port", lab.mtls_port)))
    result = run("down", *lab.args("--purge"))
    assert result.exit_code == 2 and "holds what lab did not make (photos/, thesis.txt)" in result.output
    assert (lab.dir / "thesis.txt").read_text() == "four years" and (lab.dir / "photos" / "cat.jpg").is_file()
    assert (lab.dir / "lab.yml").is_file() and (lab.dir / "certs" / "client-ca.key").is_file()
    # Without the user's files, the same purge deletes the lab's and the folder.
    shutil.rmtree(lab.dir / "photos")
    (lab.dir / "thesis.txt").unlink()
    ok(run("down", *lab.args("--purge")))
    assert not lab.dir.exists()


@pytest.mark.docker
def test_purge_refuses_a_nested_lab_a_copied_lab_yml_and_a_link(new_lab, tmp_path, docker_client):
    from helpers import leftovers

    outer = new_lab()
    ok(run(*outer.up_args()))
    inner = outer.dir / "inner"
    ok(run("render", "--dir", inner, "--name", f"{outer.name}-in", "--image", outer.image))
    refused = run("down", *outer.args("--purge"))
    assert refused.exit_code == 2 and "inner/" in refused.output
    assert (inner / "certs" / "client-ca.key").is_file()
    # A lab.yml copied from a running lab into another folder: neither that lab nor the folder is touched.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(outer.dir / "lab.yml", copy / "lab.yml")
    moved = run("down", "--dir", copy, "--purge")
    assert moved.exit_code == 2 and f"runs from {outer.dir.resolve()}" in moved.output, moved.output
    assert f"lab down --dir {outer.dir.resolve()}" in moved.output
    assert (copy / "lab.yml").is_file() and len(leftovers(docker_client, outer.name)) == 3
    # A link to the lab: refused before anything is taken down.
    link = tmp_path / "link"
    link.symlink_to(outer.dir)
    linked = run("down", "--dir", link, "--name", outer.name, "--purge")
    assert linked.exit_code == 2 and "symbolic link" in linked.output and "nothing was taken down" in linked.output
    assert len(leftovers(docker_client, outer.name)) == 3
    ok(run("verify", *outer.args()))


@pytest.mark.docker
def test_a_mistyped_dir_never_reaches_a_lab_running_elsewhere(new_lab, tmp_path, docker_client):
    """`lab status --dir typo` showed, and `lab down` from any folder removed, the lab of that name that runs
    from another folder: the containers' folder label is compared, and the command says where it runs."""
    from helpers import leftovers

    lab = new_lab()
    ok(run(*lab.up_args()))
    for command in (["status"], ["down"], ["logs", "mtls"]):
        result = run(*command, "--dir", tmp_path / "typo-does-not-exist", "--name", lab.name)
        assert result.exit_code == 2, (command, result.output)
        assert f"lab '{lab.name}' runs from {lab.dir.resolve()}" in result.output
        assert f"lab {command[0]} --dir {lab.dir.resolve()}" in result.output
    assert len(leftovers(docker_client, lab.name)) == 3
    ok(run("down", *lab.args()))


# --------------------------------------------------------------------------- interrupts


def _ca_orphans(lab_dir: Path, names) -> list[str]:
    """Valid certificates the client CA issued to these names that have no student folder."""
    return [r.login for r in ca.ca_records(lab_dir)
            if r.status == "V" and r.login in names and not (lab_dir / "clients" / r.login).is_dir()]


def test_ctrl_c_during_a_roster_keeps_what_finished_and_a_rerun_completes_it(rendered, tmp_path):
    names = [f"student{i:02d}" for i in range(20)]
    roster = tmp_path / "class.txt"
    roster.write_text("\n".join(names) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "lab", "client", "add", "--from-file", str(roster),
                             *rendered.args()], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    clients = rendered.dir / "clients"
    while time.monotonic() < deadline and len(list(clients.glob("student*"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    kept = sorted(p.name for p in clients.glob("student*"))
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "removed" not in err
    assert f"{len(kept)} of 20 students issued and kept" in err and "run the same command again" in err
    assert _ca_orphans(rendered.dir, names) == []       # no valid certificate without its folder
    again = ok(run("client", "add", "--from-file", roster, *rendered.args()))
    assert (f"kept: {', '.join(kept)} already had a certificate" in again.output) if kept else True
    listed = {c.name: c.status for c in students.list_students(rendered.dir)}
    assert listed == {n: "valid" for n in names}


@pytest.mark.parametrize("whole_terminal", [False, True], ids=["lab-alone", "whole-terminal"])
def test_ctrl_c_while_openssl_issues_leaves_no_certificate_behind(rendered, tmp_path, whole_terminal):
    """The Ctrl-C lands while `openssl ca` is still issuing (made slow here). lab must let it finish
    before undoing: a killed script's openssl went on writing the CA database after the undo had read
    it, leaving a valid certificate with no folder (seen in CI-like runs). From a terminal the Ctrl-C
    reaches openssl too: that is an interrupt (exit 130), not an OpenSSL failure."""
    import shutil as sh

    fake = tmp_path / "bin"
    fake.mkdir()
    started = tmp_path / "issuing"
    # A slow `openssl ca`: it holds its request and output elsewhere (as a running openssl holds open
    # files), says it started, and writes to the CA database a second later.
    (fake / "openssl").write_text(f"""#!{sys.executable}
import os, shutil, sys, time
args = sys.argv[1:]
if args[:2] == ["ca", "-batch"]:
    first = args.index("-infiles") + 1          # the requests, then -out: all held elsewhere
    for i in [*range(first, len(args)), args.index("-out") + 1]:
        keep = os.path.join({str(tmp_path)!r}, os.path.basename(args[i]))
        if i >= first:
            shutil.copy(args[i], keep)
        args[i] = keep
    open({str(started)!r}, "w").close()
    time.sleep(1)
os.execv({sh.which("openssl")!r}, ["openssl", *args])
""")
    (fake / "openssl").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "lab", "client", "add", "solo", *map(str, rendered.args())],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    if whole_terminal:
        os.killpg(proc.pid, signal.SIGINT)          # as a terminal does: lab, bash and openssl
    else:
        proc.send_signal(signal.SIGINT)             # lab alone: its children keep running
    out, err = proc.communicate(timeout=60)
    time.sleep(1.5)                                 # anything still running has written by now
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err, (out, err)
    assert _ca_orphans(rendered.dir, ["solo"]) == []
    ok(run("client", "add", "solo", *rendered.args()))     # and it can be issued again


def test_ctrl_c_at_any_moment_of_an_issue_leaves_no_certificate_behind(rendered):
    """A Ctrl-C at every 2 ms of one student's issue (the script's fork included: a child started
    there was never waited for): no valid certificate is ever left without its folder."""
    clients = rendered.dir / "clients"
    for i in range(24):
        names = [f"s{i:02d}a", f"s{i:02d}b"]
        proc = subprocess.Popen([sys.executable, "-m", "lab", "client", "add", *names, *map(str, rendered.args())],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (clients / names[0]).is_dir() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(i * 0.002)                       # somewhere in the second student's issue
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        # 130: interrupted; 0, or Python ending on the signal: it landed once all was done.
        assert proc.returncode in (0, 130, -signal.SIGINT) and "Traceback" not in err, (i, out, err)
        time.sleep(0.2)                             # a child left running would have written by now
        assert _ca_orphans(rendered.dir, names) == [], (i, err)


@pytest.mark.docker
def test_ctrl_c_while_up_prints_says_the_lab_is_up(new_lab, monkeypatch):
    from lab.views import lifecycle as lifecycle_view

    lab = new_lab()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle_view, "up", interrupted)
    result = run(*lab.up_args())
    assert result.exit_code == 130
    assert f"interrupted while printing: lab {lab.name} is up" in result.output
    assert "removed" not in result.output
    monkeypatch.undo()
    ok(run("verify", *lab.args()))


# --------------------------------------------------------------------------- one bad file, no traceback


def _no_traceback(result):
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


def test_a_corrupt_student_certificate_is_flagged_and_the_rest_shown(rendered):
    ok(run("client", "add", "good", "bad", *rendered.args()))
    (rendered.dir / "clients" / "bad" / "bad.crt").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    listed = _no_traceback(ok(run("client", "list", "--json", *rendered.args())))
    assert {c["name"]: c["status"] for c in json.loads(listed.stdout)} == {"bad": "unreadable", "good": "valid"}
    table = ok(run("client", "list", *rendered.args()))
    assert "bad.crt: not a readable PEM certificate" in table.output and "lab client add --force bad" in table.output
    pki = _no_traceback(ok(run("certs", *rendered.args())))
    assert "clients/bad/bad.crt" in pki.output and "not a readable PEM certificate" in pki.output
    assert "clients/good/good.crt" in pki.output
    verify = _no_traceback(run("verify", *rendered.args()))   # the lab is not running: connect errors, no crash
    assert verify.exit_code == 1
    # ... and the damaged student can still be revoked: the CA keeps its own copy.
    ok(run("client", "revoke", "bad", *rendered.args()))
    assert {r.login: r.status for r in ca.ca_records(rendered.dir)}["bad"] == "R"


def test_a_truncated_ca_certificate_is_flagged_by_certs(rendered):
    ca = rendered.dir / "certs" / "client-ca.crt"
    ca.write_bytes(ca.read_bytes()[:100])
    result = _no_traceback(ok(run("certs", *rendered.args())))
    assert "certs/client-ca.crt" in result.output and "not a readable PEM certificate" in result.output
    assert "certs/server.crt" in result.output


def test_a_corrupt_crl_is_seen_by_doctor_and_made_again(rendered):
    crl = rendered.dir / "crl" / "client-ca.crl"
    crl.write_text("garbage")
    checks = {c["name"]: c for c in json.loads(run("doctor", *rendered.args("--json"), env=NO_ENGINE).stdout)}
    assert not checks["revocation list"]["ok"] and "no student is lost" in checks["revocation list"]["fix"]
    _no_traceback(ok(run("client", "list", *rendered.args())))
    ok(run("render", *rendered.args()))
    assert crl.read_text().startswith("-----BEGIN X509 CRL-----")


def test_doctor_sees_a_crl_running_out_during_the_workshop(rendered):
    certs = rendered.dir / "certs"
    subprocess.run(["openssl", "ca", "-gencrl", "-config", "client-ca-db/ca.cnf", "-crlhours", "2",
                    "-out", str(rendered.dir / "crl" / "client-ca.crl")], cwd=certs, check=True, capture_output=True)
    checks = {c["name"]: c for c in json.loads(run("doctor", *rendered.args("--json"), env=NO_ENGINE).stdout)}
    crl = checks["revocation list"]
    assert not crl["ok"] and crl["blocking"] and "nginx refuses every student" in crl["detail"]
    ok(run("render", *rendered.args()))     # renewed
    checks = {c["name"]: c for c in json.loads(run("doctor", *rendered.args("--json"), env=NO_ENGINE).stdout)}
    assert checks["revocation list"]["ok"]


def test_doctor_sees_a_damaged_ca_database_before_the_room_does(rendered):
    """openssl ca refuses a damaged index.txt: lab doctor says so (with the line) before `client add` fails."""
    ok(run("client", "add", "ann", *rendered.args()))
    index = rendered.dir / "certs" / "client-ca-db" / "index.txt"
    good = index.read_bytes()

    def ca_check():
        checks = {c["name"]: c for c in json.loads(run("doctor", *rendered.args("--json"), env=NO_ENGINE).stdout)}
        return checks["client CA database"]

    before = ca_check()
    assert before["ok"] and re.search(r"^\d+ certificates issued, 0 revoked$", before["detail"]), before
    issued = int(before["detail"].split()[0])
    index.write_bytes(good + b"a line typed by hand\n\xff\xfe\n")
    check = ca_check()
    assert not check["ok"] and not check["blocking"] \
        and f"line {issued + 1}, {issued + 2} is not a certificate record" in check["detail"]
    text = run("doctor", *rendered.args(), env=NO_ENGINE).output
    assert "✗ client CA database" in text and ", 1 to see to (lab up works), " in text
    failed = run("client", "add", "bob", *rendered.args())
    assert failed.exit_code == 5 and "Problem with index file" in failed.output
    assert not (rendered.dir / "clients" / "bob").exists() and not list((rendered.dir / "clients").glob(".*"))
    index.write_bytes(good)
    ok(run("client", "add", "bob", *rendered.args()))
    assert ca_check()["detail"].startswith(f"{issued + 1} certificates issued")


@pytest.mark.parametrize("encoding,works", [("utf-8-sig", True), ("utf-16", True), ("latin-1", False)])
def test_roster_encodings(rendered, tmp_path, encoding, works):
    roster = tmp_path / "class.txt"
    roster.write_bytes("# Klasse 3b, Müller\nzoe\nyan\n".encode(encoding))
    result = _no_traceback(run("client", "add", "--from-file", roster, *rendered.args()))
    if works:
        ok(result)
        assert {c.name for c in students.list_students(rendered.dir)} == {"zoe", "yan"}
    else:
        assert result.exit_code == 2 and "is not UTF-8 text (line 1" in result.output and "UTF-8" in result.output
        assert len(result.output.strip().splitlines()) == 2   # the error and its fix
        assert not (rendered.dir / "clients").exists()


@pytest.mark.parametrize("text,message", [
    ("image: [a, b]\n", "lab.yml: image must be text, not ['a', 'b']"),
    ("tls_port: '8888'\n", "lab.yml: tls_port must be a whole number"),
    ("sans: localhost\n", "lab.yml: sans must be a list of names"),
    ("bind: 192.0.2.1\n", "lab.yml: bind: bind address 192.0.2.1 is not an address of this machine"),
])
def test_a_bad_lab_yml_names_the_file_and_key(tmp_path, text, message):
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "lab.yml").write_text(text)
    for command in ("status", "verify", "up"):
        result = _no_traceback(run(command, "--dir", lab_dir, env=NO_ENGINE))
        assert result.exit_code == 2 and message in result.output, (command, result.output)
        assert "--" not in result.output.splitlines()[0]   # no flag the user never gave


# --------------------------------------------------------------------------- smaller holes


@pytest.mark.parametrize("names,message", [
    (["server-ca"], "reserved"), (["client-ca"], "reserved"), (["Server"], "reserved"),
    (["Ann", "ann"], "differ only in case"),
])
def test_names_that_collide_are_refused_before_the_ca_issues_anything(rendered, names, message):
    before = ca.ca_records(rendered.dir)
    result = run("client", "add", *names, *rendered.args())
    assert result.exit_code == 2 and message in result.output
    assert ca.ca_records(rendered.dir) == before and not (rendered.dir / "clients").exists()


def test_a_name_differing_in_case_from_an_existing_student_is_refused(rendered):
    ok(run("client", "add", "ann", *rendered.args()))
    result = run("client", "add", "ANN", *rendered.args())
    assert result.exit_code == 2 and "ANN and ann" in result.output


def test_a_second_client_add_waits_for_the_first(rendered):
    from lab.core.locking import lab_lock

    with lab_lock(rendered.name):
        proc = subprocess.Popen([sys.executable, "-m", "lab", "client", "add", "gus", *rendered.args()], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None          # waiting, not refused
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "gus" in out


def test_locks_are_private_to_the_user(rendered):
    from lab.core.locking import lock_path

    path = lock_path(rendered.name)
    assert not str(path).startswith("/tmp/") and path.exists()
    assert path.parent.stat().st_mode & 0o077 == 0 and path.parent.stat().st_uid == os.geteuid()


@pytest.mark.docker
def test_doctor_and_up_see_a_foreign_network_with_the_labs_name(new_lab, docker_client):
    lab = new_lab()
    net = docker_client.networks.create(f"{lab.name}-net")
    try:
        checks = {c["name"]: c for c in json.loads(run("doctor", *lab.args("--json", "--image", lab.image)).stdout)}
        assert not checks["network"]["ok"] and checks["network"]["blocking"]
        result = run(*lab.up_args())
        assert result.exit_code == 6 and "was not made by this lab" in result.output
        assert not lab.dir.exists()
    finally:
        net.remove()


@pytest.mark.docker
def test_a_closed_pipe_is_not_an_error(new_lab):
    lab = new_lab()
    cmd = " ".join([f"'{sys.executable}'", "-m", "lab", *map(str, lab.up_args())])
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -1"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("✓ lab") and "ERROR" not in proc.stderr and "Traceback" not in proc.stderr
    ok(run("verify", *lab.args()))


def test_a_read_only_lab_directory_is_one_clear_message(rendered):
    """A read-only file system (a lab on a mounted share): one message naming it, no shell noise."""
    ro = subprocess.run(["mount", "--bind", "-o", "ro", str(rendered.dir), str(rendered.dir)], capture_output=True)
    if ro.returncode != 0:
        from helpers import missing

        missing(f"cannot bind-mount read-only here ({ro.stderr.decode().strip()})")
    try:
        result = run("client", "add", "ivy", *rendered.args())
    finally:
        subprocess.run(["umount", str(rendered.dir)], check=True)
    assert result.exit_code == 3 and "is not writable" in result.output
    assert "bash" not in result.output and "OpenSSL" not in result.output


@pytest.mark.docker
def test_room_mode_warns_what_is_reachable_and_names_this_machine(new_lab):
    """--bind 0.0.0.0: the certificate names this machine as students reach it, the URLs are printed,
    the students' READMEs use them. Requests go to loopback only."""
    import socket

    from cryptography import x509

    from lab.core import settings

    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "uma", *lab.args()))
    lab.bind = "0.0.0.0"
    result = ok(run(*lab.up_args()))
    assert f"ports {lab.tls_port} and {lab.mtls_port} are published on every address of this machine" in result.output
    assert "renewed       the server CA and certificate, for the new names" in result.output
    names = settings.room_names("0.0.0.0")
    cert = x509.load_pem_x509_certificate((lab.dir / "certs" / "server.crt").read_bytes())
    from lab.pki.certs import server_sans

    assert set(names) <= set(server_sans(cert)) and f"DNS:{socket.gethostname()}" in names
    assert not any(n.startswith("IP:172.17.") for n in names)          # not the container bridge
    # Students are sent to this machine's address first; to its host name only where that name leads here
    # from the network (here it resolves to loopback, as many machines' /etc/hosts has it).
    address = next(n.split(":", 1)[1] for n in names if n.startswith("IP:"))
    url = f"https://{settings.bracketed(address)}:{lab.mtls_port}/hello-world.txt"
    assert url in result.output
    assert f"students connect to: {url}" in ok(run("status", *lab.args())).output
    host_url = f"https://{socket.gethostname()}:{lab.mtls_port}/hello-world.txt"
    assert (host_url in result.output) == settings._leads_here(socket.gethostname())
    ok(run("client", "add", "vic", *lab.args()))
    assert f"https://{settings.bracketed(address)}:{lab.mtls_port}/whoami" in \
        (lab.dir / "clients" / "vic" / "README.txt").read_text()
    # uma's folder got the new server CA: her certificate still works against the renewed server.
    assert (lab.dir / "clients" / "uma" / "server-ca.crt").read_bytes() == (lab.dir / "certs" / "server-ca.crt").read_bytes()
    assert status_code(lab, "uma") == 200
    ok(run("verify", *lab.args()))            # requests go to loopback only


@pytest.mark.docker
@pytest.mark.faults
def test_brackets_in_the_lab_path_are_shown_as_typed_never_read_as_markup(new_lab, tmp_path):
    """rich reads [red] or [/] as markup: a lab folder named so must neither crash a command
    (a MarkupError traceback) nor vanish from what the projector shows."""
    folder = "class [/]notes [red]x"
    lab = new_lab(dir=tmp_path / folder / "lab")
    results = {"doctor": run("doctor", *lab.args())}
    results["up"] = ok(run(*lab.up_args()))
    for args in (["status"], ["status", "--all"], ["client", "add", "ann"], ["certs"], ["verify"],
                 ["handout", "ann"], ["exercise", "start", "tls13-only"], ["exercise", "reset"], ["render"]):
        results[" ".join(args)] = ok(run(*args, *(lab.args() if args != ["status", "--all"] else [])))
    (lab.dir / "certs" / "client.crt").write_text("broken")
    results["certs, a broken file"] = run("certs", *lab.args())
    results["down"] = ok(run("down", *lab.args("--purge")))
    for what, result in results.items():
        assert "Traceback" not in result.output and "MarkupError" not in result.output, (what, result.output)
    for what in ("doctor", "up", "status", "client add ann", "certs", "handout ann", "down"):
        assert folder in results[what].output.replace("\n", ""), (what, results[what].output)


def _damage_cache(lab_dir: Path, shape) -> list[str]:
    """Every entry of .lab-cache.json replaced by `shape`; a ("fields", x) shape keeps each entry's
    keys and puts x in every one of them (the damage that reaches the code reading an entry)."""
    path = lab_dir / ".lab-cache.json"
    data = json.loads(path.read_text())
    for key in data:
        if isinstance(shape, tuple):
            data[key] = {k: shape[1] for k in data[key]}
        elif isinstance(shape, dict):
            data[key] = {k: shape for k in data[key]} | shape
        else:
            data[key] = shape
    path.write_text(json.dumps(data))
    return list(data)


DAMAGE = [[1, 2], 5, None, ("fields", [1, 2]), ("fields", 5), ("fields", "text"), {"files": [1]},
          {"files": {"certs/server.crt": [1, 2, 3]}},
          {"digest": 3, "next_update": "not a date", "outputs": {"x": 1}, "inputs": 1, "not_after": "2020"}]


@pytest.mark.faults
@pytest.mark.parametrize("shape", DAMAGE, ids=[f"damage{i}" for i in range(len(DAMAGE))])
def test_a_damaged_cache_costs_time_never_a_crash(rendered, shape):
    """.lab-cache.json only makes a warm run faster: whatever is in it, every command works as without it."""
    from lab.pki import certs

    certs.expiries(rendered.dir)                  # what lab status and lab up remember
    keys = _damage_cache(rendered.dir, shape)
    assert {"certs", "render", "written", "crl", "expiries"} <= set(keys)
    for args in (["render"], ["diff"], ["certs"], ["client", "list"], ["status"], ["render"]):
        result = run(*args, *rendered.args())
        assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError,
                                                                                     KeyError, ValueError)), \
            (args, result.output, result.exception)
        if args[0] != "status":          # status needs the engine; the others need only the files
            assert result.exit_code == 0, (args, result.output)
    assert "no edits" in ok(run("diff", *rendered.args())).output


@pytest.mark.docker
@pytest.mark.faults
def test_a_damaged_cache_on_a_running_lab_is_repaired_by_up(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    _damage_cache(lab.dir, ("fields", [1, 2]))
    status = run("status", *lab.args())
    assert status.exit_code == 0 and "Traceback" not in status.output
    assert "runs an older" in status.output            # not known: said as such, never assumed current
    ok(run("up", *lab.args()))
    assert "both servers run the files in the lab directory" in ok(run("status", *lab.args())).output
    ok(run("verify", *lab.args()))


# --------------------------------------------------------------------------- never through a link


@pytest.mark.faults
def test_reset_never_writes_into_a_linked_server_folder(rendered, tmp_path):
    """`lab reset` wrote into a symlinked nginx-mtls/ folder (wherever it pointed)."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(rendered.dir / "nginx-mtls", elsewhere)
    (elsewhere / "nginx.conf").write_text("a file that is not the lab's\n")
    shutil.rmtree(rendered.dir / "nginx-mtls")
    (rendered.dir / "nginx-mtls").symlink_to(elsewhere)
    result = run("reset", *rendered.args(), env=NO_ENGINE)
    assert result.exit_code != 0 and "is a symbolic link" in result.output and "nginx-mtls" in result.output
    assert (elsewhere / "nginx.conf").read_text() == "a file that is not the lab's\n"
    assert not list(elsewhere.glob("*.edited-*"))


@pytest.mark.faults
def test_a_linked_student_folder_is_revoked_but_never_written_through(rendered, tmp_path):
    """`client revoke` wrote into a symlinked clients/NAME, and `client add --force` then failed leaving a
    valid certificate in index.txt that `client list` did not show."""
    ok(run("client", "add", "lou", *rendered.args()))
    folder = rendered.dir / "clients" / "lou"
    elsewhere = tmp_path / "lou-elsewhere"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere)
    readme = (elsewhere / "README.txt").read_text()
    ok(run("client", "revoke", "lou", *rendered.args(), env=NO_ENGINE))
    assert (elsewhere / "README.txt").read_text() == readme                    # not written through
    assert {r.login: r.status for r in ca.ca_records(rendered.dir)}["lou"] == "R"   # but revoked
    before = ca.ca_records(rendered.dir)
    again = run("client", "add", "--force", "lou", *rendered.args(), env=NO_ENGINE)
    assert again.exit_code != 0 and "symbolic link" in again.output
    assert ca.ca_records(rendered.dir) == before                               # nothing issued
