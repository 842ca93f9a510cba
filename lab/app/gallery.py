"""lab gallery: the gallery of bad client certificates, made from the lab's client CA, sent to the running
mTLS server, each judged beside what the standards say (lab/teach/gallery.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from lab.app.selection import Lab
from lab.app.servers import require_running
from lab.core.errors import LabError, VerificationFailed
from lab.core.locking import lab_lock

if TYPE_CHECKING:
    from lab.teach.gallery import Report


@dataclass(frozen=True)
class GalleryRun:
    report: Report
    made: bool                          # the certificates were made by this run
    failure: Optional[LabError] = None  # a row that did not behave as the lab documents for this nginx


def ensure(lab: Lab, again: bool = False) -> bool:
    from lab.app.students import LOCK_WAIT
    from lab.teach import gallery

    with lab_lock(lab.name, wait=LOCK_WAIT):
        return gallery.ensure(lab.dir, lab.settings, again=again)


def run(lab: Lab, only: Optional[list[str]] = None, again: bool = False) -> GalleryRun:
    from lab.engine import runtime
    from lab.teach import gallery

    for name in only or []:
        gallery.find(name)                   # a misspelt name fails before anything is made or sent
    engine = runtime.connect()
    require_running(engine, lab, "mtls", "there is no server to judge the gallery")
    made = ensure(lab, again)
    nginx, openssl = runtime.nginx_versions(engine, lab.name, "mtls")
    report = gallery.Report(gallery.run(lab.dir, lab.settings, only), nginx, openssl)
    failure = None
    if report.changed:
        failure = VerificationFailed(
            f"{len(report.changed)} of {len(report.rows)} gallery certificates did not get the verdict the lab "
            f"documents for nginx {nginx} with OpenSSL {openssl}: " + ", ".join(r.specimen.name for r in report.changed),
            hint="a newer nginx or OpenSSL judges them otherwise: the rows say what it answered (lab/teach/gallery.py "
                 "documents each)")
    return GalleryRun(report, made, failure)
