"""lab doctor's checks that need no engine (the rest run against the real one in test_room.py)."""

from __future__ import annotations

from helpers import ok, run


def test_doctor_clock_checks():
    """A clock far off from the engine's (or simply wrong) is caught: certificates are checked against it."""
    import datetime as dt

    from lab.app import doctor
    from lab.engine.seam import DockerEngine

    class Client:
        """What the Docker SDK's client answers: the engine's time, in nanoseconds."""

        def __init__(self, when):
            self.when = when

        def info(self):
            return {"SystemTime": self.when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")}

    def Engine(when):
        return DockerEngine(Client(when))

    now = dt.datetime.now(dt.timezone.utc)
    assert doctor.check_clock(Engine(now), now).ok
    skewed = doctor.check_clock(Engine(now + dt.timedelta(minutes=10)), now)
    assert not skewed.ok and "disagree by 600 s" in skewed.detail
    assert not doctor.check_clock(None, dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc)).ok


def test_doctor_sees_a_crl_that_misses_a_revocation(rendered):
    """A CRL put back by hand (or by an old restore) that lacks a serial the CA database revoked: doctor
    names it; lab up would make it anew."""
    import json
    import shutil

    from lab.core import layout

    ok(run("client", "add", "ann", *rendered.args()))
    crl = rendered.dir / layout.CRL_DIR / layout.CRL_FILE
    shutil.copy(crl, rendered.dir / "old.crl")
    ok(run("client", "revoke", "ann", *rendered.args()))
    shutil.copy(rendered.dir / "old.crl", crl)
    checks = {c["name"]: c for c in json.loads(run("doctor", "--json", *rendered.args()).stdout)}
    found = checks["revocation list"]
    assert not found["ok"] and "does not list 1 certificate(s) the client CA revoked" in found["detail"]
    assert "those students still get in" in found["detail"]
