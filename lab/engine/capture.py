"""A packet capture of one connection to the lab on this machine (loopback), with tcpdump.

tcpdump rather than tshark or a Python library: it is small, everywhere
(Debian's tcpdump, macOS ships it), and writes the pcap Wireshark opens.
Capturing needs root or the CAP_NET_RAW capability; when either is missing
the error says which and how to get it. The capture is written beside the
target under a temporary name and renamed only once complete.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Literal

from lab.core.errors import LabError, UsageError

INSTALL_HINT = "install tcpdump (Debian/Ubuntu: apt-get install tcpdump; macOS has it)"
PRIVILEGE_HINT = ("capturing packets needs root or CAP_NET_RAW: run lab as root, or once: "
                  "sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v tcpdump)\"")


def interface() -> str:
    """The loopback interface: lo on Linux, lo0 on macOS and the BSDs."""
    return "lo" if Path("/sys/class/net/lo").exists() else "lo0"


def writable_target(path: Path, what: str) -> Path:
    """Where a file will be written: refused now (before any connection) when it cannot be."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder: give a file name")
    if path.exists() or path.is_symlink():
        raise UsageError(f"{what} {path} already exists: lab does not overwrite it",
                         hint="give a new file name, or remove that one first")
    parent = path.absolute().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{what} {path}: cannot write into {parent}", hint="choose a path in a writable folder")
    return path


def available() -> tuple[bool, str, str]:
    """(can capture, what was seen, the fix) for lab doctor."""
    exe = shutil.which("tcpdump")
    if exe is None:
        return False, "tcpdump is not installed (lab handshake --pcap needs it)", INSTALL_HINT
    if os.geteuid() == 0:
        return True, f"{exe}, as root", ""
    getcap = shutil.which("getcap")
    caps = subprocess.run([getcap, exe], capture_output=True, text=True).stdout if getcap else ""
    if "cap_net_raw" in caps:
        return True, f"{exe} has CAP_NET_RAW", ""
    return False, f"{exe} is there, but lab is not root and tcpdump lacks CAP_NET_RAW", PRIVILEGE_HINT


class Capture:
    """`with Capture(path, port):` around one connection to 127.0.0.1/::1:port."""

    def __init__(self, path: Path, port: int):
        self.path, self.port = path, port
        self.folder: Path | None = None
        self.tmp = path       # set on entry: a file in a new private folder beside the target
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Capture:
        import tempfile

        exe = shutil.which("tcpdump")
        if exe is None:
            raise LabError("tcpdump is not installed: --pcap captures with it", hint=INSTALL_HINT)
        # tcpdump writes by name (and truncates what it finds): into a folder this run made (mkdtemp: new,
        # private), never a fixed name beside the target, where a planted link would send it anywhere.
        self.folder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.absolute().parent))
        self.tmp = self.folder / "capture.pcap"
        # --immediate-mode: every packet is handed over as it comes (without it, packets may still sit
        # in the kernel's buffer when the capture stops, and the file holds none).
        self.proc = subprocess.Popen([exe, "-i", interface(), "--immediate-mode", "-U", "-n", "-w", str(self.tmp),
                                      f"tcp port {self.port} and (host 127.0.0.1 or host ::1)"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on …" once it captures: no packet is missed after that.
        said = ""
        stderr = self.proc.stderr
        assert stderr is not None     # stderr=PIPE
        for _ in range(10):
            line = stderr.readline()
            said += line
            if not line or "listening on" in line:
                break
        if "listening on" not in said:
            said = (said + (stderr.read() if self.proc.poll() is not None else "")).strip()
            self._stop()
            shutil.rmtree(self.folder, ignore_errors=True)
            denied = "permission" in said.lower() or "not permitted" in said.lower()
            raise LabError(f"tcpdump cannot capture on {interface()}: {said.splitlines()[-1] if said else '?'}",
                           hint=PRIVILEGE_HINT if denied else f"run it by hand to see why: tcpdump -i {interface()}")
        return self

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # tcpdump flushes and closes the file on SIGINT
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: object) -> Literal[False]:
        time.sleep(0.1)    # the last packets of the connection (its FINs) reach the capture
        self._stop()
        try:
            if kind is None and self.tmp.is_file():
                os.chmod(self.tmp, 0o600)      # the handshake, certificates and all: for the one who captured it
                self.tmp.replace(self.path)
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
        return False
