"""The installed `lab` command, in a subprocess, the way an instructor runs it;
and the promises the README and CI make about it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import REPO, free_port, leftovers, remove_lab

BIN = Path(sys.executable).parent
COMMANDS = ["up", "verify", "curl", "status", "logs", "doctor", "render", "client", "certs", "image", "diff", "reset",
            "reload", "exercise", "handshake", "demo", "handout", "room", "down"]


def lab_exe() -> str:
    exe = BIN / "lab"
    if not exe.exists():
        exe = shutil.which("lab")
    assert exe, "the `lab` console script is not installed next to this Python (pip install . first)"
    return str(exe)


def sh(*args, cwd, **kw):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120, env=env, **kw)


def test_console_script_and_module(tmp_path):
    version = sh(lab_exe(), "--version", cwd=tmp_path)
    assert version.returncode == 0 and re.fullmatch(r"lab \d+\.\d+\.\d+\n", version.stdout)
    helped = sh(sys.executable, "-m", "lab", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", helped.stdout, re.M), f"{command} has no help line"
    assert "Exit codes:" in helped.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(tmp_path, command):
    result = sh(lab_exe(), command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage: lab " + command in result.stdout
    assert f"lab {command}" in (REPO / "README.md").read_text()


def test_installed_package_carries_templates_and_scripts(tmp_path):
    """From outside the source tree, the installed package finds its templates and scripts."""
    code = "import lab.core.resources as r; print(r.templates_dir()); print(r.scripts_dir())"
    out = sh(sys.executable, "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    templates, scripts = map(Path, out.stdout.split())
    for name in ("nginx-tls.conf.j2", "nginx-mtls.conf.j2", "docker-compose.yml.j2"):
        assert (templates / name).is_file()
    assert (scripts / "gen-certs.sh").is_file()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"^(\S.*pytest.*?)\s+# the whole test suite", readme, re.M)
    assert m, "README's quick start names no test command"
    assert m.group(1).strip() in (REPO / ".ci" / "run").read_text()


@pytest.mark.docker
def test_smoke_up_verify_down_in_a_subprocess(tmp_path, docker_client, image):
    name = f"labtest-{uuid.uuid4().hex[:8]}"
    try:
        up = sh(lab_exe(), "up", "--name", name, "--tls-port", str(free_port()), "--mtls-port", str(free_port()),
                "--image", image, cwd=tmp_path)
        assert up.returncode == 0, up.stderr + up.stdout
        assert (tmp_path / name / "lab.yml").is_file()  # default lab directory: ./NAME
        verify = sh(lab_exe(), "verify", "--name", name, cwd=tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert re.search(r"^13 passed, 0 failed$", verify.stdout, re.M)
        down = sh(lab_exe(), "down", "--name", name, "--purge", cwd=tmp_path)
        assert down.returncode == 0, down.stderr
        assert leftovers(docker_client, name) == [] and not (tmp_path / name).exists()
    finally:
        remove_lab(docker_client, name)


def test_error_is_one_line_without_traceback(tmp_path):
    result = sh(lab_exe(), "up", "--name", "Bad Name", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ERROR: invalid lab name 'Bad Name': use 1 to 32 lower-case letters, digits and dashes "
        "(it names containers, a network and certificate subjects)"]
    assert list(tmp_path.iterdir()) == []
