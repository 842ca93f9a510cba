"""Hands-on: students edit the servers' configuration, reload it, break it and
fix it, and no edit is ever lost. Against real nginx and real requests."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import ok, run

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def scenario(lab, name: str) -> dict:
    return json.loads(run("verify", *lab.args("--scenario", name, "--json")).stdout)[0]


def sed(path, old: str, new: str) -> None:
    """Edit as `sed -i` does: a new file renamed over the old one (a new inode)."""
    subprocess.run(["sed", "-i", f"s/{old}/{new}/", str(path)], check=True)
    assert new.replace("\\", "") in path.read_text()


@pytest.fixture
def lab(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    return lab


@pytest.mark.docker
def test_an_edit_saved_by_rename_is_kept_shown_loaded_and_reset(lab, docker_client):
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    sed(conf, "ssl_verify_client on;", "ssl_verify_client optional;")
    started = docker_client.containers.get(f"{lab.name}-mtls").attrs["State"]["StartedAt"]

    # Nothing reloaded yet: the server still runs the lesson, and status says the file differs.
    assert scenario(lab, "no-cert")["detail"]["status"] == 400
    status = run("status", *lab.args())
    assert "mtls: runs an older nginx-mtls/nginx.conf than the lab directory" in status.output

    # lab render keeps the edit and says so; lab diff shows it, exit 1.
    rendered = ok(run("render", *lab.args()))
    assert "kept          your edit of nginx-mtls/nginx.conf" in rendered.output
    assert "ssl_verify_client optional;" in conf.read_text()
    diff = run("diff", *lab.args())
    assert diff.exit_code == 1
    assert "-        ssl_verify_client on;" in diff.stdout and "+        ssl_verify_client optional;" in diff.stdout
    assert diff.stdout.startswith("--- lesson/nginx-mtls/nginx.conf\n+++ nginx-mtls/nginx.conf\n")

    # lab up on the running lab keeps it too, and reloads (no new container) instead of recreating.
    up = ok(run("up", *lab.args()))
    assert "kept          your edit of nginx-mtls/nginx.conf" in up.output
    assert "reloaded      the mtls server, without downtime: it had an older nginx-mtls/nginx.conf" in up.output
    assert docker_client.containers.get(f"{lab.name}-mtls").attrs["State"]["StartedAt"] == started
    seen = scenario(lab, "no-cert")
    assert seen["detail"]["status"] == 200 and not seen["passed"]   # the edit is served: no certificate needed

    # lab reset: the lesson's file back, the edit kept beside it, the server reloaded.
    reset = ok(run("reset", *lab.args()))
    assert "nginx-mtls/nginx.conf is the lesson's again; your edited copy is kept as nginx.conf.edited-" in reset.output
    assert "the mtls server reloaded" in reset.output
    backups = list((lab.dir / "nginx-mtls").glob("nginx.conf.edited-*"))
    assert len(backups) == 1 and "ssl_verify_client optional;" in backups[0].read_text()
    assert ok(run("diff", *lab.args())).stdout == ""
    assert "13 passed, 0 failed" in ok(run("verify", *lab.args())).output


@pytest.mark.docker
def test_lab_reload_says_what_changed_and_an_edit_in_place_is_never_overwritten(lab):
    conf = lab.dir / "nginx-tls" / "nginx.conf"
    with open(conf, "r+") as f:          # written in place: the same inode
        text = f.read().replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.3;")
        f.seek(0)
        f.write(text)
        f.truncate()
    ok(run("render", *lab.args()))
    assert "ssl_protocols TLSv1.3;" in conf.read_text()
    reloaded = ok(run("reload", "tls", *lab.args()))
    assert "tls server reloaded without downtime" in reloaded.output and "your nginx-tls/nginx.conf" in reloaded.output
    again = ok(run("reload", *lab.args()))
    assert again.output.count("nothing had changed since its last load") == 2


@pytest.mark.docker
def test_a_broken_edit_is_refused_with_nginx_words_and_the_old_config_keeps_serving(lab):
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    sed(conf, "ssl_verify_client on;", "ssl_verify_client sometimes;")
    line = next(i for i, text in enumerate(conf.read_text().splitlines(), 1) if "sometimes" in text)
    result = run("reload", *lab.args())
    assert result.exit_code == 8, result.output
    assert f'invalid value "sometimes" in nginx-mtls/nginx.conf:{line}' in result.output
    assert "/etc/nginx" not in result.output
    assert "still serves its previous configuration" in result.output
    assert scenario(lab, "client-cert")["passed"] and scenario(lab, "no-cert")["passed"]   # served as before
    up = run("up", *lab.args())
    assert up.exit_code == 8 and "sometimes" in up.output
    assert ok(run("verify", *lab.args()))
    # A revocation cannot be loaded through a broken configuration: loud, not silent.
    ok(run("client", "add", "kai", *lab.args()))
    revoke = run("client", "revoke", "kai", *lab.args())
    assert revoke.exit_code == 8 and "still admits them" in revoke.output
    ok(run("reset", "nginx-mtls/nginx.conf", *lab.args()))
    assert scenario(lab, "revoked")["passed"]


@pytest.mark.docker
def test_reload_of_a_lab_that_is_down(new_lab):
    lab = new_lab()
    ok(run("render", *lab.args("--image", lab.image)))
    result = run("reload", *lab.args())
    assert result.exit_code == 3 and "is not running" in result.output and "lab up" in result.output


def test_reset_of_a_file_lab_did_not_render(rendered):
    (rendered.dir / "notes.txt").write_text("mine")
    for command in ("reset", "diff"):
        result = run(command, "notes.txt", *rendered.args())
        assert result.exit_code == 2 and "lab did not render notes.txt" in result.output
    assert (rendered.dir / "notes.txt").read_text() == "mine"


def test_files_are_named_from_anywhere_but_never_another_labs(rendered, lab_params):
    """As typed from the lab, from its parent, or absolute: this lab's file. A path into another
    lab's folder is refused (exit 2), not silently taken as this lab's file of the same name."""
    conf = rendered.dir / "nginx-mtls" / "nginx.conf"
    for typed in ("nginx-mtls/nginx.conf", str(conf), f"{rendered.dir.name}/nginx-mtls/nginx.conf"):
        conf.write_text(conf.read_text() + "# a note\n")
        reset = ok(run("reset", typed, *rendered.args()))
        assert "nginx-mtls/nginx.conf is the lesson's again" in reset.output, (typed, reset.output)
    other = lab_params()
    ok(run("render", *other.args("--image", other.image)))
    theirs = other.dir / "nginx-mtls" / "nginx.conf"
    theirs.write_text(theirs.read_text() + "# theirs\n")
    conf.write_text(conf.read_text() + "# mine\n")
    for command in ("reset", "diff"):
        result = run(command, str(theirs), *rendered.args())
        assert result.exit_code == 2 and "is not in this lab's folder" in result.output, result.output
    assert theirs.read_text().endswith("# theirs\n") and conf.read_text().endswith("# mine\n")


def test_an_edit_that_is_not_utf8(rendered):
    conf = rendered.dir / "nginx-tls" / "nginx.conf"
    conf.write_bytes(conf.read_bytes() + b"\n# caf\xe9\n")
    result = run("diff", *rendered.args())
    assert result.exit_code == 3 and "nginx-tls/nginx.conf is not UTF-8 text" in result.output
    ok(run("render", *rendered.args()))
    assert conf.read_bytes().endswith(b"caf\xe9\n")          # kept, not overwritten
    ok(run("reset", "nginx-tls/nginx.conf", *rendered.args(), env=NO_ENGINE))
    assert ok(run("diff", *rendered.args())).stdout == ""


def test_edits_survive_a_lost_cache(rendered):
    """Without lab's record of what it wrote, a file that differs from the lesson is still kept."""
    conf = rendered.dir / "nginx-mtls" / "nginx.conf"
    sed(conf, "ssl_verify_depth 1;", "ssl_verify_depth 2;")
    (rendered.dir / ".lab-cache.json").unlink()
    ok(run("render", *rendered.args()))
    assert "ssl_verify_depth 2;" in conf.read_text()
    assert re.search(r"^\+\s+ssl_verify_depth 2;", run("diff", *rendered.args()).stdout, re.M)


def test_certificates_put_in_by_hand_are_kept_and_checked(rendered):
    """A student's own server certificate and key: kept and said so when they match, a clear error when not."""
    import shutil

    certs, demo = rendered.dir / "certs", rendered.dir / "demo-certs"
    # Another valid pair from the same lab: the wrong-purpose demo certificate and its key, as the client's.
    shutil.copy(demo / "wrong-purpose.crt", certs / "client.crt")
    shutil.copy(demo / "wrong-purpose.key", certs / "client.key")
    kept = ok(run("render", *rendered.args()))
    assert "kept          your certs/client.crt (put in by hand; every key matches its certificate" in kept.output
    assert (certs / "client.crt").read_bytes() == (demo / "wrong-purpose.crt").read_bytes()
    shutil.copy(demo / "rogue-client.key", certs / "client.key")      # a key that does not match
    bad = run("render", *rendered.args())
    assert bad.exit_code == 5 and "certs/client.key does not match" in bad.output
    assert (certs / "client.crt").read_bytes() == (demo / "wrong-purpose.crt").read_bytes()   # nothing overwritten
