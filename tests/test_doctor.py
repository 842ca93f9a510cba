"""lab doctor's checks that need no engine (the rest run against the real one in test_room.py)."""

from __future__ import annotations


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
