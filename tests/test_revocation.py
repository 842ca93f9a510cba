"""Revocation by other means than a CRL: a short-lived certificate simply ends (nothing revoked, the "passive
revocation" of smallstep), and is renewed before it does. Against real nginx, real clocks."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from helpers import mtls_get, ok, run

from lab.core.errors import UsageError
from lab.core.settings import validate_ttl


@pytest.mark.parametrize("text,seconds", [("1m", 60), ("10m", 600), ("8h", 28800), ("2d", 172800), (" 90m ", 5400)])
def test_a_lifetime_is_minutes_to_days(text, seconds):
    assert validate_ttl(text) == seconds


@pytest.mark.parametrize("text", ["5s", "0m", "10", "1w", "m", "-1m", "1.5h", "826d", "10 m", ""])
def test_a_lifetime_outside_minutes_to_days_is_refused(text):
    with pytest.raises(UsageError, match="a lifetime is a number and m, h or d"):
        validate_ttl(text)


def test_the_end_of_a_short_lived_certificate_is_told_to_the_minute():
    from lab.views.students import until

    now = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    assert until(now + dt.timedelta(seconds=59), now) == "2026-12-06 12:00 UTC, 1m left"
    assert until(now + dt.timedelta(minutes=90), now) == "2026-12-06 13:30 UTC, 1h30m left"
    assert until(now + dt.timedelta(days=30), now) == "2027-01-05"
    assert until(now - dt.timedelta(minutes=1), now) == "2026-12-06 11:59 UTC"
    assert until(None, now) == "-"


@pytest.fixture(scope="module")
def lab(module_lab):
    return module_lab("labtest-ttl")


def _listed(lab) -> dict:
    return {s["name"]: s for s in json.loads(ok(run("client", "list", "--json", *lab.args())).stdout)}


@pytest.mark.docker
def test_a_one_minute_certificate_is_admitted_then_refused_as_expired_with_nothing_revoked(lab):
    from lab.pki import ca

    added = ok(run("client", "add", "José Núñez", "bo", "--ttl", "1m", *lab.args()))
    assert "left" in added.output
    crl_before = ca.crl_serials(lab.dir)
    student = _listed(lab)["jose-nunez"]
    end = dt.datetime.fromisoformat(student["not_after"])
    assert student["status"] == "valid" and dt.timedelta(0) < end - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=1)
    status, body = mtls_get(lab, "jose-nunez", "/hello-world.txt")
    assert status == 200, body
    time.sleep(max(0.0, (end - dt.datetime.now(dt.UTC)).total_seconds()) + 2)
    status, body = mtls_get(lab, "jose-nunez", "/hello-world.txt")
    assert status == 400 and "expired" in body, body
    assert "certificate has expired" in ok(run("logs", "mtls", "--tail", "1", *lab.args())).output
    assert _listed(lab)["jose-nunez"]["status"] == "expired"
    assert ca.crl_serials(lab.dir) == crl_before                     # nothing was revoked
    assert all(r.status == "V" for r in ca.ca_records(lab.dir) if r.login == "jose-nunez")

    # Renewed: a new certificate of the same lifetime, the old one left to its end (not revoked).
    renewed = ok(run("client", "renew", "jose-nunez", *lab.args()))
    assert "for 1m" in renewed.output and "is not revoked: it ends by itself" in renewed.output
    assert mtls_get(lab, "jose-nunez", "/hello-world.txt")[0] == 200
    assert ca.crl_serials(lab.dir) == crl_before
    # One past its end can still be revoked (a leaked key, found later): the server refused it already, as expired.
    revoked = ok(run("client", "revoke", "bo", *lab.args()))
    assert "now refuses bo: HTTP 400" in revoked.output and "certificate has expired" in revoked.output


@pytest.mark.docker
def test_renewing_a_long_lived_certificate_revokes_the_old_one(lab, tmp_path):
    from lab.pki import ca

    ok(run("client", "add", "陈美玲", *lab.args()))
    login = next(n for n, s in _listed(lab).items() if s["display"] == "陈美玲")
    folder = lab.dir / "clients" / login
    old = (tmp_path / "old.crt", tmp_path / "old.key")     # the copy a student keeps
    old[0].write_bytes((folder / f"{login}.crt").read_bytes())
    old[1].write_bytes((folder / f"{login}.key").read_bytes())
    old_serial = ca.load_cert(old[0]).serial_number
    assert mtls_get(lab, old, "/hello-world.txt")[0] == 200
    renewed = ok(run("client", "renew", "陈美玲", *lab.args()))
    assert "is revoked: it had months to run" in renewed.output
    assert old_serial in ca.crl_serials(lab.dir)
    status, body = mtls_get(lab, old, "/hello-world.txt")
    assert status == 400 and "revoked" in body
    assert mtls_get(lab, login, "/hello-world.txt")[0] == 200
    listed = _listed(lab)[login]
    assert listed["status"] == "valid" and listed["serial"] != format(old_serial, "X")


def test_renew_refuses_what_cannot_be_renewed(rendered):
    ok(run("client", "add", "ann", *rendered.args()))
    ok(run("client", "revoke", "ann", *rendered.args()))
    refused = run("client", "renew", "ann", *rendered.args())
    assert refused.exit_code == 2 and "a revoked certificate is not renewed" in refused.output
    assert "lab client add --force ann" in refused.output
    unknown = run("client", "renew", "nobody", *rendered.args())
    assert unknown.exit_code == 2 and "no student named 'nobody'" in unknown.output
    bad = run("client", "add", "bo", "--ttl", "30s", *rendered.args())
    assert bad.exit_code == 2 and "--ttl '30s'" in bad.output and not (rendered.dir / "clients" / "bo").exists()


# --------------------------------------------------------------------------- OCSP

def test_the_revocation_mode_decides_what_nginx_asks(tmp_path):
    from lab.config import render
    from lab.core.settings import Settings
    from lab.teach.defences import turned_off

    def texts(mode: str) -> tuple[str, str]:
        t, _ = render.lesson(tmp_path, Settings(name="rv", revocation=mode))
        return t["nginx-mtls/nginx.conf"], t["docker-compose.yml"]

    conf, compose = texts("crl")
    assert "ssl_crl " in conf and "ssl_ocsp" not in conf and "rv-ocsp" not in compose
    conf, compose = texts("ocsp")
    assert "ssl_crl " not in conf and "ssl_ocsp on;" in conf and "ssl_ocsp_responder http://rv-ocsp:2560;" in conf
    assert "resolver 127.0.0.11" in conf and "ssl_ocsp_cache shared" not in conf
    from lab.engine import compose as compose_file

    (tmp_path / "docker-compose.yml").write_text(compose)
    spec = compose_file.read(tmp_path / "docker-compose.yml")
    responder = next(s for s in spec.services if s.key == "ocsp")
    # On the lab network only, no port published, its own key: never the CA's.
    assert responder.ports == {} and responder.command[:2] == ("openssl", "ocsp") and responder.cap_add == ()
    assert all(m.read_only for m in responder.mounts) and [m.source.name for m in responder.mounts] == ["ocsp"]
    assert "client-ca.key" not in compose.split("  ocsp:")[1]
    conf, _ = texts("both")
    assert "ssl_crl " in conf and "ssl_ocsp on;" in conf
    # The lesson holds with OCSP alone; neither a CRL nor OCSP is revocation turned off.
    (tmp_path / "nginx-mtls").mkdir()
    (tmp_path / "nginx-mtls" / "nginx.conf").write_text(texts("ocsp")[0])
    assert not [d for d in turned_off(tmp_path) if d.directive == "ssl_crl"]
    (tmp_path / "nginx-mtls" / "nginx.conf").write_text(texts("ocsp")[0].replace("ssl_ocsp on;", "ssl_ocsp off;"))
    assert [d for d in turned_off(tmp_path) if d.directive == "ssl_crl"]


def test_a_bad_revocation_mode_is_refused_in_one_line(rendered):
    bad = run("up", "--revocation", "ocps", *rendered.args())
    assert bad.exit_code == 2 and "invalid --revocation 'ocps': one of crl, ocsp, both" in bad.output
    (rendered.dir / "lab.yml").write_text((rendered.dir / "lab.yml").read_text() + "revocation: sometimes\n")
    bad = run("status", *rendered.args())
    assert bad.exit_code == 2 and "revocation" in bad.output


def test_an_image_without_openssl_is_named_when_the_responder_cannot_start():
    from lab.engine import runtime
    from lab.engine.compose import Service
    from lab.engine.seam import EngineError

    svc = Service("ocsp", "x-ocsp", "lab-nginx:old", {}, (), {}, "x-net", "SIGTERM", ("openssl", "ocsp"))
    err = runtime._start_error(None, svc, EngineError('exec: "openssl": executable file not found in $PATH'))
    assert "has no openssl command" in str(err) and "build-nginx-image.sh" in err.hint


@pytest.fixture(scope="module")
def ocsp_lab(module_lab):
    lab = module_lab("labtest-ocsp")
    ok(run(*lab.up_args("--revocation", "ocsp")))
    return lab


def _workers(docker_client, container: str) -> set[str]:
    return {p[1] for p in docker_client.containers.get(container).top()["Processes"]}


@pytest.mark.docker
def test_with_ocsp_a_revoked_student_is_refused_at_the_next_handshake_with_no_reload(ocsp_lab, docker_client):
    from lab.engine import runtime
    from lab.pki import students

    lab = ocsp_lab
    status = ok(run("status", *lab.args()))
    for container in (f"{lab.name}-tls", f"{lab.name}-mtls", f"{lab.name}-ocsp"):
        assert container in status.output
    assert "answers OCSP" in status.output and "older revocation list" not in status.output
    assert "OCSP responder" in ok(run("doctor", *lab.args())).output
    verified = ok(run("verify", *lab.args()))
    assert "13 passed, 0 failed" in verified.output and "certificate status request failed" in verified.output
    ok(run("client", "add", "José Núñez", "bo", *lab.args()))
    assert mtls_get(lab, "jose-nunez", "/hello-world.txt")[0] == 200     # known to the responder at once
    before = _workers(docker_client, f"{lab.name}-mtls")
    # The CA database, the CRL and the responder's index say revoked; nginx is not reloaded.
    students.revoke(lab.dir, "jose-nunez")
    runtime.ask_responder(runtime.connect(), lab.name)
    status_code, body = mtls_get(lab, "jose-nunez", "/hello-world.txt")
    assert status_code == 400 and "revoked" in body
    assert _workers(docker_client, f"{lab.name}-mtls") == before
    assert mtls_get(lab, "bo", "/hello-world.txt")[0] == 200
    said = ok(run("client", "revoke", "bo", *lab.args()))
    assert "no reload: the OCSP responder now answers" in said.output and "certificate revoked" in said.output
    assert mtls_get(lab, "bo", "/hello-world.txt")[0] == 400
    # lab handshake tells the question the server puts to the responder, and the answer.
    shown = ok(run("handshake", "client-cert", *lab.args()))
    assert f"the server asks {lab.name}-ocsp" in shown.output and '"good"' in shown.output
    shown = run("handshake", "revoked", *lab.args())
    assert '"revoked"' in shown.output


@pytest.mark.docker
def test_the_responder_down_refuses_everyone_and_down_removes_it(ocsp_lab, docker_client):
    from helpers import leftovers

    lab = ocsp_lab
    ok(run("client", "add", "cy", *lab.args()))
    docker_client.containers.get(f"{lab.name}-ocsp").stop(timeout=2)
    try:
        status_code, body = mtls_get(lab, "cy", "/hello-world.txt")
        assert status_code == 400, body                       # ssl_ocsp on: no answer, no entry
        doctor = run("doctor", *lab.args())
        assert "OCSP responder" in doctor.output and "refuses every student" in doctor.output
        assert run("status", *lab.args()).exit_code == 1
    finally:
        ok(run(*lab.up_args()))                               # lab up starts it again
    assert mtls_get(lab, "cy", "/hello-world.txt")[0] == 200
    # Back to the CRL: the responder goes, the setting is saved.
    ok(run(*lab.up_args("--revocation", "crl")))
    assert f"{lab.name}-ocsp" not in {c.name for c in docker_client.containers.list(all=True)}
    assert "revocation" not in (lab.dir / "lab.yml").read_text()
    ok(run(*lab.up_args("--revocation", "ocsp")))
    assert "revocation: ocsp" in (lab.dir / "lab.yml").read_text()
    # --purge takes the responder's folder (and the gallery's) with the rest: both are lab's own.
    (lab.dir / "gallery-certs").mkdir(exist_ok=True)
    assert (lab.dir / "ocsp" / "ocsp.crt").is_file()
    ok(run("down", "--purge", *lab.args()))
    assert leftovers(docker_client, lab.name) == [] and not lab.dir.exists()


# --------------------------------------------------------------------------- the race

def test_a_race_lab_has_a_name_of_its_own_whatever_the_labs_name(monkeypatch):
    """A 32-character lab name made a 37-character race name (refused); two races at once shared one name, and
    the second one's clean-up took the first one's lab down."""
    from lab.app import race
    from lab.app.selection import Lab
    from lab.core.settings import Settings, validate_name

    seen = []

    def stop(lab, *_a, **_k):
        seen.append(lab.settings.name)
        raise KeyboardInterrupt

    monkeypatch.setattr("lab.app.lifecycle.up", stop)
    for name in ("a" * 32, "mtls-lab", "x-" * 10 + "y"):
        with pytest.raises(KeyboardInterrupt):
            race.run(Lab(Path("unused"), Settings(name=name)), ["ocsp"])
    assert all(validate_name(n) and n.endswith(f"-race-{os.getpid() % 100000:05d}") for n in seen), seen


def test_race_refuses_bad_input_before_starting_anything(lab_params):
    lab = lab_params()
    bad = run("race", "crl-sometimes", *lab.args())
    assert bad.exit_code == 2 and "unknown mode crl-sometimes" in bad.output and not lab.dir.exists()
    bad = run("race", "--wait", "1", *lab.args())
    assert bad.exit_code == 2 and "--wait 1: from 2 to 300 seconds" in bad.output


@pytest.mark.docker
def test_the_race_reports_every_mode_and_connection_with_bounded_times(lab_params, docker_client, image):
    from helpers import leftovers

    lab = lab_params()
    raced = ok(run("race", "--json", "--wait", "4", "--image", image, *lab.args()))
    report = json.loads(raced.stdout)
    modes = {m["mode"]: {o["kind"]: o for o in m["outcomes"]} for m in report["modes"]}
    assert list(modes) == ["crl-no-reload", "crl-reload", "ocsp", "ocsp-cache", "short-lived"]
    for mode in report["modes"]:
        assert [o["kind"] for o in mode["outcomes"]] == ["full handshake", "resumed session", "keep-alive"]
        for o in mode["outcomes"]:
            assert o["refused_after"] is None or 0 <= o["refused_after"] <= mode["waited"] + 1
            assert o["refused_after"] is not None or o["how"] == f"still admitted after {mode['waited']:g} s"
    # A CRL nginx has not loaded changes nothing; loaded, the next handshake is refused.
    assert all(o["refused_after"] is None for o in modes["crl-no-reload"].values())
    assert modes["crl-reload"]["full handshake"]["how"] == "HTTP 400 (FAILED:certificate revoked)"
    # OCSP without a cache: the next full handshake is refused; an open keep-alive connection is not asked.
    assert modes["ocsp"]["full handshake"]["refused_after"] < 2
    assert "revoked" in modes["ocsp"]["full handshake"]["how"]
    assert modes["ocsp"]["keep-alive"]["refused_after"] is None
    # A cached "good" outlives the wait (this responder writes no nextUpdate: nginx keeps it an hour).
    assert modes["ocsp-cache"]["full handshake"]["refused_after"] is None
    # Nothing revoked: the short-lived certificate ends.
    assert "certificate has expired" in modes["short-lived"]["full handshake"]["how"]
    assert leftovers(docker_client, report["lab"]) == [] and not lab.dir.exists()


@pytest.mark.docker
def test_an_interrupted_race_leaves_nothing(lab_params, docker_client, image, monkeypatch):
    from helpers import leftovers

    from lab.app import race
    from lab.app.selection import select
    from lab.teach import race as measuring

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(measuring, "measure", interrupted)
    lab = lab_params()
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(KeyboardInterrupt):
        race.run(select(lab.dir, lab.name, image=image), ["ocsp"], wait=3)
    assert leftovers(docker_client, f"{lab.name[:20].rstrip('-')}-race-{os.getpid() % 100000:05d}") == []
    assert not [d for d in set(os.listdir(tempfile.gettempdir())) - before if d.startswith("lab-race-")]


@pytest.mark.docker
def test_the_race_fits_a_projector(lab_params, image, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lab = lab_params()
    shown = ok(run("race", "crl-reload", "--wait", "2", "--image", image, *lab.args()))
    lines = shown.output.splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    assert any(line.strip().startswith("full handshake") and "refused" in line for line in lines), lines


def test_a_link_planted_at_the_responders_folder_is_refused(rendered, tmp_path):
    """ocsp/ as a link to someone's folder was moved aside (their files untouched, a stray .ocsp.old-PID left in
    the lab); now refused in one line, nothing moved."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("mine")
    (rendered.dir / "ocsp").symlink_to(theirs)
    refused = run("render", "--revocation", "ocsp", *rendered.args())
    assert refused.exit_code != 0 and "ocsp" in refused.output and "link" in refused.output, refused.output
    assert (rendered.dir / "ocsp").is_symlink() and (theirs / "keep.txt").read_text() == "mine"
    assert not list(rendered.dir.glob(".ocsp.old-*"))
