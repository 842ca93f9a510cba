"""Revocation by other means than a CRL: a short-lived certificate simply ends (nothing revoked, the "passive
revocation" of smallstep), and is renewed before it does. Against real nginx, real clocks."""

from __future__ import annotations

import datetime as dt
import json
import time

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
