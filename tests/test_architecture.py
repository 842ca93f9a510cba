"""The layout holds by tools, not by review: the import-linter contracts in
pyproject.toml, mypy and ruff with no error, modules of a readable size, and
the paths that docstrings and the README name exist. No engine needed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the `lab` package found in `root` (python -c puts the working folder first)."""
    return subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--config", str(REPO / "pyproject.toml")],
                          cwd=root, capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    proc = _lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module,line,contract", [
    ("pki/certs.py", "from lab.engine import runtime", "certificates never reach the engine"),
    ("engine/runtime.py", "from lab.pki import students", "the engine knows no certificates"),
    ("core/layout.py", "from lab.app import selection", "face -> use cases -> stages -> core"),
    ("app/lesson.py", "import docker", "docker-py only behind the engine seam"),
    ("engine/compose.py", "from lab.engine import runtime", "no circles"),
])
def test_a_broken_contract_fails(tmp_path, module, line, contract):
    """The contracts test can fail: the same tree with one import that breaks a layer."""
    shutil.copytree(REPO / "lab", tmp_path / "lab")
    path = tmp_path / "lab" / module
    path.write_text(path.read_text() + f"\n\ndef _broken() -> None:\n    {line}  # noqa\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0 and contract in proc.stdout and "BROKEN" in proc.stdout, proc.stdout + proc.stderr


def test_mypy_finds_no_error():
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_finds_no_error():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "lab"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "lab").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def test_every_path_a_docstring_or_the_readme_names_exists():
    """`lab/engine/seam.py` in a comment is a promise to the reader: the file is there."""
    named: dict[str, str] = {}
    for path in [*(REPO / "lab").rglob("*.py"), REPO / "README.md"]:
        for found in re.findall(r"(?<![\w./-])lab/[a-z_/]+\.py\b|(?<![\w./-])lab/[a-z_]+/(?=[\s`)|,])", path.read_text()):
            named.setdefault(found, str(path.relative_to(REPO)))
    missing = {p: where for p, where in named.items() if not (REPO / p).exists()}
    assert missing == {}
