"""One student's zip, used as a student would: the clients in it (Python, Node, Java, Go) run from the
unzipped folder, the README's Linux commands run as written (Chromium's NSS database and a fresh
Firefox ESR profile, each made if missing), then headless Chromium and Firefox ESR greet the student by
their display name; the README's clean-up removes everything the import added. Against real nginx."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from helpers import free_port, need_tool, ok, run

pytestmark = pytest.mark.docker
STUDENT, LOGIN = "José Núñez", "jose-nunez"


@pytest.fixture(scope="module")
def unzipped(module_lab, tmp_path_factory):
    lab = module_lab("labtest-zip")
    ok(run("client", "add", STUDENT, *lab.args()))
    ok(run("handout", LOGIN, *lab.args()))
    where = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(lab.dir / "handouts" / f"{LOGIN}.zip") as z:
        z.extractall(where)
    password = (lab.dir / "passwords" / f"{LOGIN}.p12.password").read_text()
    return lab, where / LOGIN, password


def _student_env(home: Path, password: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_PASSWORD",)}
    env.update(HOME=str(home), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    if password is not None:
        env["LAB_PASSWORD"] = password
    return env


@pytest.mark.parametrize("client", ["python", "node", "java", "go"])
def test_each_client_in_the_zip_gets_200_from_the_unzipped_folder(unzipped, client, tmp_path):
    lab, folder, password = unzipped
    home = tmp_path / "home"
    home.mkdir()
    if client == "python":
        command = [os.environ.get("LAB_TEST_PYTHON", shutil.which("python3") or "python3"), "python_client.py"]
    elif client == "node":
        command = [need_tool("node", "nodejs"), "client.js"]
    elif client == "java":
        command = [need_tool("java", "default-jre-headless"), "Client.java"]
    else:
        go = need_tool("go", "golang-go")
        # The README's step: a plain copy of the key (Go reads no encrypted key); here the password is given.
        subprocess.run(["openssl", "pkey", "-in", f"{LOGIN}.key", "-out", f"{LOGIN}-plain.key", "-passin",
                        f"pass:{password}"], cwd=folder, check=True, capture_output=True)
        command = [go, "run", "client.go"]
    env = _student_env(home, password)
    env.update(GOPROXY="off", GOFLAGS="-mod=mod", GOCACHE=str(tmp_path / "gocache"), GOPATH=str(tmp_path / "gopath"))
    proc = subprocess.run(command, cwd=folder, capture_output=True, timeout=300, env=env)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, (out + proc.stderr.decode("utf-8", "replace"))[-2000:]
    assert out.startswith(f"Hello, {STUDENT}!"), out
    # A wrong password fails, and says so (no 200 by accident).
    if client in ("python", "node", "java"):
        bad = subprocess.run(command, cwd=folder, capture_output=True, timeout=300, env=_student_env(home, "wrong"))
        assert bad.returncode != 0 and not bad.stdout.decode("utf-8", "replace").startswith("Hello")


def test_both_bundles_import_and_the_legacy_one_reads_with_openssl_legacy(unzipped, tmp_path):
    _, folder, password = unzipped
    need_tool("pk12util", "libnss3-tools")
    for bundle in (f"{LOGIN}.p12", f"{LOGIN}-legacy.p12"):
        db = tmp_path / bundle
        db.mkdir()
        subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
        imported = subprocess.run(["pk12util", "-d", f"sql:{db}", "-i", str(folder / bundle), "-W", password],
                                  capture_output=True, text=True)
        assert imported.returncode == 0, imported.stdout + imported.stderr
    legacy = subprocess.run(["openssl", "pkcs12", "-legacy", "-in", str(folder / f"{LOGIN}-legacy.p12"), "-nokeys",
                             "-passin", f"pass:{password}"], capture_output=True)
    assert legacy.returncode == 0 and b"BEGIN CERTIFICATE" in legacy.stdout


def _readme_commands(text: str, section: str) -> list[str]:
    """The "$ " lines of one section of README-linux.txt (a section ends at the next unindented line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section))
    body = []
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        body.append(line)
    return [line.strip()[2:] for line in body if line.strip().startswith("$ ")]


def _run_as_written(commands: list[str], folder: Path, home: Path, password: str) -> None:
    script = "set -e\n" + "\n".join(c.replace("PASSWORD", password) for c in commands) + "\n"
    proc = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=120,
                          env=_student_env(home))
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"


def _nss_list(db: str) -> tuple[str, str]:
    certs = subprocess.run(["certutil", "-L", "-d", db], capture_output=True, text=True).stdout
    keys = subprocess.run(["certutil", "-K", "-d", db], capture_output=True, text=True, input="\n")
    return certs, keys.stdout + keys.stderr


def test_chromium_after_the_linux_readme_as_written(unzipped, tmp_path):
    lab, folder, password = unzipped
    chromium = need_tool("chromium", "chromium")
    need_tool("pk12util", "libnss3-tools")
    if os.geteuid() != 0:
        pytest.skip("the certificate policy is a managed policy: writing it needs root")
    home = tmp_path / "home"
    home.mkdir()                     # no ~/.pki at all: a laptop where Chrome never ran
    readme = (folder / "README-linux.txt").read_text(encoding="utf-8")
    _run_as_written(_readme_commands(readme, "Chrome, Chromium, Edge"), folder, home, password)
    base = f"https://localhost:{lab.mtls_port}"
    policy = Path("/etc/chromium/policies/managed") / f"lab-test-{uuid.uuid4().hex[:8]}.json"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(json.dumps({"AutoSelectCertificateForUrls": [
        json.dumps({"pattern": base, "filter": {"ISSUER": {"O": "mtls-lab"}}})]}))
    try:
        for path, says in (("/whoami", f"Hello, {STUDENT}!"), ("/", f"Hello, {STUDENT}: you are in")):
            proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--disable-component-update",
                                   f"--user-data-dir={home / 'chromium'}", "--dump-dom", base + path],
                                  capture_output=True, text=True, timeout=90, env=_student_env(home))
            assert says in proc.stdout, proc.stdout[:1500] + proc.stderr[-1500:]
    finally:
        policy.unlink(missing_ok=True)
    # The clean-up as written: nothing the import added is left (certificate, key, CA).
    db = f"sql:{home}/.pki/nssdb"
    before_certs, before_keys = _nss_list(db)
    assert STUDENT in before_certs and "server CA" in before_certs
    cleanup = [c for c in _readme_commands(readme, "After the workshop") if "$profile" not in c]
    _run_as_written(cleanup, folder, home, password)
    certs, keys = _nss_list(db)
    assert STUDENT not in certs and "server CA" not in certs and "Client CA" not in certs, certs
    assert "no keys found" in keys, keys


class Marionette:
    """Firefox's remote protocol, enough to open a page and read it: messages are LENGTH:JSON."""

    def __init__(self, port: int, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        self.buf = b""
        self.next_id = 0
        self._read()                              # the server's greeting

    def _read(self) -> object:
        while b":" not in self.buf:
            self.buf += self.sock.recv(65536)
        size, _, rest = self.buf.partition(b":")
        while len(rest) < int(size):
            rest += self.sock.recv(65536)
        self.buf = rest[int(size):]
        return json.loads(rest[:int(size)])

    def call(self, name: str, params: dict) -> dict:
        self.next_id += 1
        data = json.dumps([0, self.next_id, name, params]).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data)
        reply = self._read()
        assert isinstance(reply, list) and reply[2] is None, reply
        return reply[3]


def test_firefox_esr_after_the_linux_readme_as_written(unzipped, tmp_path):
    lab, folder, password = unzipped
    firefox = need_tool("firefox-esr", "firefox-esr")
    need_tool("pk12util", "libnss3-tools")
    home = tmp_path / "home"
    profile = home / ".mozilla" / "firefox" / "lab1.default-esr"
    profile.mkdir(parents=True)
    port = free_port()
    (profile / "user.js").write_text(
        'user_pref("security.default_personal_cert", "Select Automatically");\n'
        f'user_pref("marionette.port", {port});\n'
        'user_pref("browser.shell.checkDefaultBrowser", false);\n'
        'user_pref("datareporting.policy.dataSubmissionEnabled", false);\n')
    env = _student_env(home)
    # "Firefox must have run once": a first run makes the profile's certificate database.
    subprocess.run([firefox, "--headless", "--profile", str(profile), "--screenshot", str(tmp_path / "first.png"),
                    "about:blank"], capture_output=True, timeout=120, env=env)
    assert (profile / "cert9.db").is_file()
    readme = (folder / "README-linux.txt").read_text(encoding="utf-8")
    _run_as_written(_readme_commands(readme, "Firefox (its own database"), folder, home, password)
    proc = subprocess.Popen([firefox, "--headless", "--marionette", "--profile", str(profile), "--no-remote"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        ff = Marionette(port)
        ff.call("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": False}}})
        base = f"https://localhost:{lab.mtls_port}"
        for path, says in (("/whoami", f"Hello, {STUDENT}!"), ("/", f"Hello, {STUDENT}: you are in")):
            ff.call("WebDriver:Navigate", {"url": base + path})
            source = ff.call("WebDriver:GetPageSource", {})["value"]
            assert says in source, source[:1500]
        try:
            ff.call("Marionette:Quit", {"flags": ["eForceQuit"]})
        except (OSError, AssertionError, ValueError):
            pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # The Firefox clean-up as the README says it: the same two commands with -d "sql:$profile".
    cleanup = [c.replace('"sql:$HOME/.pki/nssdb"', '"sql:$profile"') for c in _readme_commands(readme, "After the workshop")
               if "sql:$HOME/.pki/nssdb" in c]
    _run_as_written([_readme_commands(readme, "Firefox (its own database")[0], *cleanup], folder, home, password)
    certs, keys = _nss_list(f"sql:{profile}")
    assert STUDENT not in certs and "server CA" not in certs, certs
    assert "no keys found" in keys or not re.search(r"<\s*\d+>", keys), keys


def test_every_url_in_every_readme_of_the_zip_answers(unzipped, tmp_path):
    """Each https:// URL a README sends the student to, fetched with the student's own certificate."""
    import ssl
    import urllib.request

    lab, folder, password = unzipped
    urls = set()
    for readme in folder.glob("README*"):
        urls |= {u.rstrip(".,;:)") for u in re.findall(r"https://[^\s\"'<>]+", readme.read_text(encoding="utf-8"))}
    assert {f"https://localhost:{lab.mtls_port}/{p}" for p in ("hello-world.txt", "whoami", "help")} <= urls, urls
    context = ssl.create_default_context(cafile=str(folder / "server-ca.crt"))
    context.load_cert_chain(str(folder / f"{LOGIN}.crt"), str(folder / f"{LOGIN}.key"), password=password)
    for url in sorted(urls):
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            assert response.status == 200, url
