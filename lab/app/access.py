"""Authorization on the mTLS server: who may reach what (lab access), a student's own rule for a path
(lab allow / lab deny), applied with a reload without downtime, no certificate touched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.app.selection import Lab
from lab.app.servers import sync
from lab.core.errors import LabError, UsageError

if TYPE_CHECKING:
    from lab.pki.access import Access
    from lab.pki.students import Student


@dataclass(frozen=True)
class AccessChange:
    student: Student
    path: str
    allowed: bool          # the decision now in force
    rule: str              # the rule that decides
    enforced: bool         # the running mTLS server has loaded it (False: it does when it starts)


def _roles(lab: Lab) -> dict[str, str]:
    from lab.pki import ca

    return {r.login: r.role for r in ca.ca_records(lab.dir) if r.status == "V"}


def table(lab: Lab) -> list[Access]:
    from lab.pki import access, students

    return access.table(lab.dir, students.list_students(lab.dir), _roles(lab))


def change(lab: Lab, name: str, path: str, allow: bool) -> AccessChange:
    """lab allow / lab deny: the rule written (access.yml, crl/access.map) and loaded by the running server."""
    from lab.app.students import LOCK_WAIT, mtls_port_answers
    from lab.core.errors import DockerUnavailable
    from lab.core.locking import lab_lock
    from lab.engine import runtime
    from lab.pki import access, students

    access.check_path(path)
    student = students.find(lab.dir, name)
    if student.status != "valid":
        raise UsageError(f"{student.name}'s certificate is {student.status}: authorization is for a certificate that "
                         "works (a revoked one is refused before any rule)")
    with lab_lock(lab.name, wait=LOCK_WAIT):
        allowed, rule = access.change(lab.dir, student.name, _roles(lab).get(student.name, "student"), path, allow)
        enforced = False
        try:
            engine = runtime.connect()
            found = runtime.server_state(engine, lab.name, "mtls")
            if found is not None and found[1] == "running":
                sync(lab, engine, ["mtls"])
                enforced = True
        except DockerUnavailable:
            if mtls_port_answers(lab):     # something serves the lab, and lab cannot make it load the rule
                raise
        except LabError as e:
            raise type(e)(f"the rule is written, but the mTLS server could not be made to load it ({e})",
                          details=e.details, hint=f"lab up{lab.selector} loads it") from None
    return AccessChange(student, path, allowed, rule, enforced)
