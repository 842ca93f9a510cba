"""The one exception family of `lab`.

Stages raise a LabError subclass; only lab/cli.py turns them into a one-line
message on stderr and an exit code. The exit codes are documented in
`lab --help` and in the README.
"""

from __future__ import annotations


class LabError(Exception):
    """An expected failure: say what failed, why, and what to do."""

    exit_code = 3
    #: Extra lines shown under the message (a command's stderr, a container's logs).
    details: str = ""

    def __init__(self, message: str, *, hint: str = "", details: str = ""):
        super().__init__(message)
        self.hint = hint
        self.details = details


class UsageError(LabError):
    """Bad input: an option, a name, a port, an address. Nothing was written."""

    exit_code = 2


class DockerUnavailable(LabError):
    """The Docker engine cannot be reached."""

    exit_code = 4


class ImageUnavailable(LabError):
    """The nginx image is absent and could not be pulled."""

    exit_code = 4


class CertificateError(LabError):
    """Certificates could not be made, or the existing ones are unusable."""

    exit_code = 5


class RuntimeFailure(LabError):
    """Containers could not be created, started or made ready (port in use, nginx exited)."""

    exit_code = 6


class LabBusy(LabError):
    """Another lab command holds this lab's lock."""

    exit_code = 7


class VerificationFailed(LabError):
    """`lab verify`: at least one scenario did not behave as the lesson says."""

    exit_code = 1


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
    130: "interrupted (Ctrl-C); what this run made was removed",
}
