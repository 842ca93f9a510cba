"""The one exception family of `lab`.

Stages raise a LabError subclass; only lab/cli/boundary.py turns them into a one-line
message on stderr and an exit code. The exit codes are documented in
`lab --help` and in the README.
"""

from __future__ import annotations


class LabError(Exception):
    """An expected failure: say what failed, why, and what to do.

    A subclass names its exit code: `class UsageError(LabError, exit_code=2)`, or has its parent's."""

    exit_code = 3
    #: Extra lines shown under the message (a command's stderr, a container's logs).
    details: str = ""

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:      # else the parent's: a RuntimeFailure's kind exits 6 too
            cls.exit_code = exit_code

    def __init__(self, message: str, *, hint: str = "", details: str = ""):
        super().__init__(message)
        self.hint = hint
        self.details = details


class UsageError(LabError, exit_code=2):
    """Bad input: an option, a name, a port, an address. Nothing was written."""


class DockerUnavailable(LabError, exit_code=4):
    """The Docker engine cannot be reached."""


class ImageUnavailable(LabError, exit_code=4):
    """The nginx image is absent and could not be pulled."""


class CertificateError(LabError, exit_code=5):
    """Certificates could not be made, or the existing ones are unusable."""


class RuntimeFailure(LabError, exit_code=6):
    """Containers could not be created, started or made ready (port in use, nginx exited)."""


class LabBusy(LabError, exit_code=7):
    """Another lab command holds this lab's lock."""


class VerificationFailed(LabError, exit_code=1):
    """`lab verify`: at least one scenario did not behave as the lesson says."""


class ConfigError(LabError, exit_code=8):
    """nginx refused a server's configuration (`nginx -t`): the old one keeps serving."""


class Interrupted(LabError, exit_code=130):
    """Ctrl-C, where what is left is not "nothing": the message says what was done and kept."""


EXIT_CODES = {
    0: "success",
    1: "lab verify: a scenario did not behave as expected; lab doctor: something blocks lab up; "
       "lab status: a server is not running",
    2: "bad input (option, name, port, address, settings file)",
    3: "other lab error (lab directory, rendering)",
    4: "Docker engine unreachable, or image missing and not pullable",
    5: "certificates: openssl missing or failed, key/certificate mismatch, expired",
    6: "containers: port in use, nginx failed to start or to become ready",
    7: "another lab command is changing the same lab right now",
    8: "nginx refused an edited configuration (nginx -t); the server still serves the old one",
    130: "interrupted (Ctrl-C); what this run made was removed, or the message says what was kept",
}
