"""Handouts and students' own keys: a zip per student with nothing secret but their own key, the
instructor's password sheet apart; a certificate request signed without the key ever leaving."""

from __future__ import annotations

import csv
import json
import subprocess
import zipfile

import pytest

from helpers import ok, run
from lab.pki import ca, students


def make_request(folder, cn: str, *extra: str) -> tuple:
    key, csr = folder / f"{cn}.key", folder / f"{cn}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-subj", f"/CN={cn}", *extra, "-out", str(csr)], check=True,
                   capture_output=True)
    return key, csr


def test_handouts_hold_no_password_and_the_sheet_holds_them_all(rendered, tmp_path):
    ok(run("client", "add", "ada", "bo", "cy", *rendered.args()))
    ok(run("client", "revoke", "cy", *rendered.args()))
    out = tmp_path / "hand"
    result = ok(run("handout", "--all", "--out", out, *rendered.args()))
    assert "no handout for cy" in result.output
    refused = run("handout", "cy", *rendered.args())
    assert refused.exit_code == 2 and "cy (revoked): no handout" in refused.output
    hint = refused.output.split("fix: ", 1)[1].strip()         # the command it suggests, as printed
    assert hint.startswith("lab client add --force cy --dir ") and hint.endswith(" issues new ones"), hint
    # The sheet of passwords is never beside the zips (the folder that goes on a USB stick).
    assert sorted(p.name for p in out.iterdir()) == ["ada.zip", "bo.zip"]
    sheet = rendered.dir / "passwords" / "roster.csv"
    assert f"passwords: {sheet}" in result.output
    with zipfile.ZipFile(out / "ada.zip") as z:
        assert sorted(z.namelist()) == sorted([
            "ada/README.html", "ada/README.txt", "ada/README-windows.txt", "ada/README-macos.txt",
            "ada/README-linux.txt", "ada/ada-legacy.p12", "ada/ada.crt", "ada/ada.key", "ada/ada.p12",
            "ada/server-ca.crt", "ada/python_client.py", "ada/client.js", "ada/Client.java", "ada/client.go"])
        readme = z.read("ada/README.txt").decode()
        everything = b"".join(z.read(n) for n in z.namelist())
        z.extractall(tmp_path / "unzipped")
    rows = {r["name"]: r for r in csv.DictReader(sheet.open())}
    assert set(rows) == {"ada", "bo"}
    for name, row in rows.items():
        password = (rendered.dir / "passwords" / f"{name}.p12.password").read_text()
        assert row["p12 password"] == password and row["zip"] == f"{name}.zip"
        assert password.encode() not in everything and password not in result.output
    assert sheet.stat().st_mode & 0o077 == 0
    # The password protects the key wherever it travels: encrypted in the zip, both bundles open with it.
    unzipped, password = tmp_path / "unzipped" / "ada", rows["ada"]["p12 password"]
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in (unzipped / "ada.key").read_bytes()
    assert b"BEGIN PRIVATE KEY" not in everything
    for cmd in (["openssl", "pkey", "-in", str(unzipped / "ada.key"), "-noout", "-passin", f"pass:{password}"],
                ["openssl", "pkcs12", "-in", str(unzipped / "ada.p12"), "-noout", "-passin", f"pass:{password}"],
                ["openssl", "pkcs12", "-legacy", "-in", str(unzipped / "ada-legacy.p12"), "-noout", "-passin",
                 f"pass:{password}"]):
        assert subprocess.run(cmd, capture_output=True).returncode == 0, cmd
    legacy = subprocess.run(["openssl", "pkcs12", "-legacy", "-info", "-noout", "-in", str(unzipped / "ada-legacy.p12"),
                             "-passin", f"pass:{password}"], capture_output=True, text=True)
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in legacy.stderr + legacy.stdout and "MAC: sha1" in legacy.stderr
    for platform in ("curl", "python3 python_client.py", "node client.js", "java Client.java", "go run client.go",
                     "README-windows.txt", "README-macos.txt", "README-linux.txt", "ada-legacy.p12", "--pass",
                     "--cert-type P12 --cert ada.p12:PASSWORD", "openssl s_client", "/help"):
        assert platform in readme
    systems = {s: (unzipped / f"README-{s}.txt").read_text() for s in ("windows", "macos", "linux")}
    assert "curl.exe --cacert server-ca.crt --cert-type P12 --cert ada.p12:PASSWORD" in systems["windows"]
    assert "Invoke-WebRequest" in systems["windows"] and "Import-PfxCertificate" in systems["windows"]
    assert "security import ada-legacy.p12" in systems["macos"]
    assert "libnss3-tools" in systems["linux"] and "Manage certificates" in systems["linux"]
    for text in systems.values():
        assert "After the workshop" in text
    assert f"https://localhost:{rendered.mtls_port}/whoami" in readme


@pytest.mark.faults
def test_handout_bad_input(rendered, tmp_path):
    ok(run("client", "add", "dee", *rendered.args()))
    ok(run("client", "revoke", "dee", *rendered.args()))
    (tmp_path / "afile").write_text("x")
    cases = [(["--all", "--out", tmp_path / "afile"], "is a file"), (["nobody"], "no student named 'nobody'"),
             (["dee"], "dee (revoked)"), ([], "give --all")]
    for args, message in cases:
        result = run("handout", *args, *rendered.args())
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert (tmp_path / "afile").read_text() == "x"
    assert not (rendered.dir / "handouts").exists() or not list((rendered.dir / "handouts").glob("*.zip"))


def test_a_students_own_request_is_signed_and_the_key_never_leaves(rendered, tmp_path):
    key, csr = make_request(tmp_path, "eve")
    result = ok(run("client", "sign", csr, *rendered.args()))
    assert "the key stayed with the student" in result.output
    folder = rendered.dir / "clients" / "eve"
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "client-ca.crt", "eve.crt", "server-ca.crt"]
    assert "never left your computer" in (folder / "README.txt").read_text()
    listed = {s["name"]: s["status"] for s in json.loads(ok(run("client", "list", "--json", *rendered.args())).stdout)}
    assert listed == {"eve": "valid"}
    strict = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile",
                             str(rendered.dir / "certs" / "client-ca.crt"), str(folder / "eve.crt")],
                            capture_output=True, text=True)
    assert strict.returncode == 0, strict.stderr
    ok(run("handout", "eve", "--out", tmp_path / "h", *rendered.args()))
    with zipfile.ZipFile(tmp_path / "h" / "eve.zip") as z:
        assert sorted(z.namelist()) == sorted(["eve/README.html", "eve/README.txt", "eve/eve.crt", "eve/server-ca.crt",
                                               "eve/python_client.py", "eve/client.js", "eve/Client.java", "eve/client.go"])
    ok(run("client", "revoke", "eve", *rendered.args()))
    assert students.find(rendered.dir, "eve").status == "revoked"


def test_the_lab_decides_the_extensions_whatever_the_request_asks(rendered, tmp_path):
    """A request that asks for more than a client certificate is refused; the lab's subject replaces the student's."""
    from cryptography import x509

    _, csr = make_request(tmp_path, "fin", "-addext", "subjectAltName=DNS:bank.example")
    ok(run("client", "sign", csr, "--student", "finn", *rendered.args()))
    cert = x509.load_pem_x509_certificate((rendered.dir / "clients" / "finn" / "finn.crt").read_bytes())
    assert cert.subject.rfc4514_string().startswith("CN=finn,")
    # Whatever the request asked for, the one SAN is the lab's: the student's SPIFFE ID.
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == [f"spiffe://{rendered.name}/student/finn"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [o.dotted_string for o in eku] == ["1.3.6.1.5.5.7.3.2"]   # clientAuth, only


@pytest.mark.faults
@pytest.mark.parametrize("extra,cn,student,message", [
    (["-addext", "basicConstraints=critical,CA:TRUE"], "gil", None, "asks to be a CA"),
    (["-addext", "extendedKeyUsage=serverAuth"], "hal", None, "asks for serverAuth"),
    ([], "server-ca", None, "reserved"),
    ([], "bad<name>", None, "'<' is not allowed in a name"),
    ([], "ivy", "taken", "is taken"),
])
def test_bad_requests_are_refused_and_nothing_is_written(rendered, tmp_path, extra, cn, student, message):
    ok(run("client", "add", "taken", *rendered.args()))
    before = ca.ca_records(rendered.dir)
    _, csr = make_request(tmp_path, cn.replace(" ", "_"), *extra) if " " not in cn else (None, None)
    if csr is None:
        _, csr = make_request(tmp_path, "tmp")
        csr = tmp_path / "spaced.csr"
        subprocess.run(["openssl", "req", "-new", "-key", str(tmp_path / "tmp.key"), "-subj", f"/CN={cn}",
                        "-out", str(csr)], check=True, capture_output=True)
    result = run("client", "sign", csr, *(["--student", student] if student else []), *rendered.args())
    assert result.exit_code == 2 and message in result.output, result.output
    assert ca.ca_records(rendered.dir) == before
    assert sorted(p.name for p in (rendered.dir / "clients").iterdir()) == ["taken"]


@pytest.mark.faults
def test_a_request_with_a_bad_signature(rendered, tmp_path):
    _, csr = make_request(tmp_path, "jo")
    der = tmp_path / "jo.der"
    subprocess.run(["openssl", "req", "-in", str(csr), "-outform", "DER", "-out", str(der)], check=True)
    data = bytearray(der.read_bytes())
    data[-5] ^= 0x55                                  # inside the signature
    der.write_bytes(bytes(data))
    result = run("client", "sign", der, *rendered.args())
    assert result.exit_code == 2 and ("signature does not verify" in result.output
                                      or "not a certificate request" in result.output)
    assert not (rendered.dir / "clients").exists()


@pytest.mark.docker
def test_a_signed_student_reaches_the_server_with_their_own_key(new_lab, tmp_path):
    import http.client
    import ssl

    lab = new_lab()
    ok(run(*lab.up_args()))
    key, csr = make_request(tmp_path, "kim")
    ok(run("client", "sign", csr, *lab.args()))
    ctx = ssl.create_default_context(cafile=str(lab.dir / "certs" / "server-ca.crt"))
    ctx.load_cert_chain(str(lab.dir / "clients" / "kim" / "kim.crt"), str(key))
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    conn.request("GET", "/whoami")
    assert conn.getresponse().read().decode().startswith("Hello, kim!")
    as_kim = run("verify", "--as", "kim", *lab.args())          # lab cannot act as kim: no key of hers
    assert as_kim.exit_code == 2 and "kim's key is not in this lab" in as_kim.output
    # Revoked, on the running server: lab holds no key of kim's to show it with, and says so.
    revoked = ok(run("client", "revoke", "kim", *lab.args()))
    assert "kim's key is not in this lab" in revoked.output
    conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
    conn.request("GET", "/whoami")
    assert conn.getresponse().status == 400
    assert "13 passed, 0 failed" in ok(run("verify", *lab.args())).output   # no `revoked` row it cannot run
    shown = run("handshake", "--as", "kim", *lab.args())
    assert shown.exit_code == 2 and "kim's key is not in this lab" in shown.output
    taken = run("client", "sign", csr, *lab.args())
    assert taken.exit_code == 2 and "--student another name" in taken.output


def test_a_lost_p12_password_stops_before_any_zip_is_written(rendered, tmp_path):
    """A .p12 whose password is gone opens for no one: named, that student gets an error and nothing is
    written; with --all they are left out and named, the others get their handouts and the roster."""
    ok(run("client", "add", "ann", "bob", "cy", *rendered.args()))
    (rendered.dir / "passwords" / "ann.p12.password").unlink()
    (rendered.dir / "passwords" / "bob.p12.password").write_bytes(b"\xff\xfe not text")
    out = tmp_path / "hand"
    refused = run("handout", "cy", "ann", "--out", out, *rendered.args())
    assert refused.exit_code == 2 and "ann (.p12 password lost: passwords/ann.p12.password)" in refused.output
    assert "lab client add --force ann" in refused.output and "Traceback" not in refused.output
    assert not out.exists() or not list(out.iterdir())
    everyone = ok(run("handout", "--all", "--out", out, *rendered.args()))
    assert sorted(p.name for p in out.iterdir()) == ["cy.zip"]
    assert "no handout for ann (.p12 password lost" in everyone.output and "bob (.p12 password lost" in everyone.output
    rows = list(csv.DictReader((rendered.dir / "passwords" / "roster.csv").open()))
    assert [r["name"] for r in rows] == ["cy"] and rows[0]["p12 password"]
    ok(run("client", "add", "--force", "ann", *rendered.args()))      # the fix it names
    ok(run("handout", "ann", "--out", out, *rendered.args()))


@pytest.mark.faults
@pytest.mark.parametrize("key,digest,says", [
    (["-newkey", "rsa:1024"], "-sha256", "an RSA key of 1024 bits: the lab's servers refuse keys under 2048"),
    (["-newkey", "rsa:2048"], "-sha1", "signed with SHA1, which is broken and refused"),
])
def test_a_request_the_servers_would_refuse_is_not_signed(rendered, tmp_path, key, digest, says):
    """RSA-1024 was signed ("✓") and then refused by nginx ("EE certificate key too weak") while the student
    stood on the roster; a SHA-1 request was called "not made with the key it carries"."""
    csr = tmp_path / "weak.csr"
    proc = subprocess.run(["openssl", "req", "-new", *key, "-nodes", "-keyout", str(tmp_path / "weak.key"), digest,
                           "-subj", "/CN=weak", "-out", str(csr)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = run("client", "sign", csr, *rendered.args())
    assert result.exit_code == 2 and says in result.output, result.output
    assert not (rendered.dir / "clients").exists()


@pytest.mark.faults
def test_a_dsa_request_is_refused_for_its_key(rendered, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa
    from cryptography.x509.oid import NameOID

    key = dsa.generate_private_key(2048)
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dee")])).sign(key, hashes.SHA256())
    path = tmp_path / "dee.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    result = run("client", "sign", path, *rendered.args())
    assert result.exit_code == 2 and "carries a DSA key" in result.output


def test_a_der_request_is_signed(rendered, tmp_path):
    """The README says PEM or DER: a DER request failed in the script with exit 5."""
    _, csr = make_request(tmp_path, "dora")
    der = tmp_path / "dora.der"
    subprocess.run(["openssl", "req", "-in", str(csr), "-outform", "DER", "-out", str(der)], check=True)
    ok(run("client", "sign", der, *rendered.args()))
    assert (rendered.dir / "clients" / "dora" / "dora.crt").is_file()
    assert sorted(p.name for p in (rendered.dir / "clients").iterdir()) == ["dora"]


@pytest.mark.faults
def test_demo_student_is_reserved_for_the_demo(rendered, tmp_path):
    """lab demo revokes and re-issues `demo-student` live: a real student of that name would lose their
    certificate without a word."""
    result = run("client", "add", "demo-student", *rendered.args())
    assert result.exit_code == 2 and "reserved for lab demo" in result.output
    _, csr = make_request(tmp_path, "demo-student")
    signed = run("client", "sign", csr, *rendered.args())
    assert signed.exit_code == 2 and "reserved for lab demo" in signed.output


def test_handing_out_one_student_keeps_everyone_elses_password_row(rendered, tmp_path):
    """`lab handout --all`, then a routine re-issue of one student and `lab handout eve`: roster.csv held
    one row (every other password lost)."""
    ok(run("client", "add", "ann", "eve", "zoe", *rendered.args()))
    ok(run("handout", "--all", *rendered.args()))
    sheet = rendered.dir / "passwords" / "roster.csv"
    before = {r["name"]: r for r in csv.DictReader(sheet.open())}
    ok(run("client", "add", "--force", "eve", *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"}))
    ok(run("handout", "eve", *rendered.args()))
    after = {r["name"]: r for r in csv.DictReader(sheet.open())}
    assert set(after) == {"ann", "eve", "zoe"}
    assert after["ann"] == before["ann"] and after["zoe"] == before["zoe"]
    assert after["eve"]["serial"] != before["eve"]["serial"]
    assert after["eve"]["p12 password"] == (rendered.dir / "passwords" / "eve.p12.password").read_text()


def test_a_roster_csv_lab_did_not_write_is_never_replaced(rendered, tmp_path):
    ok(run("client", "add", "ann", *rendered.args()))
    (tmp_path / "roster.csv").write_text("student,grade\nann,A\n")       # a file of that name in --out: not ours
    ok(run("handout", "ann", "--out", tmp_path, *rendered.args()))
    assert (tmp_path / "roster.csv").read_text() == "student,grade\nann,A\n" and (tmp_path / "ann.zip").is_file()
    sheet = rendered.dir / "passwords" / "roster.csv"
    sheet.write_text("student,grade\nann,A\n")                           # the sheet itself, replaced by hand
    result = run("handout", "ann", *rendered.args())
    assert result.exit_code == 2 and "not a password sheet lab wrote" in result.output
    assert sheet.read_text() == "student,grade\nann,A\n"


@pytest.mark.docker
def test_the_zip_as_a_student_unpacks_it_gets_in(new_lab, tmp_path):
    """From the zip alone, as its README says: curl with the encrypted key and its password, and with the
    legacy bundle (what a Mac imports)."""
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "noa", *lab.args()))
    ok(run("handout", "noa", *lab.args()))
    with zipfile.ZipFile(lab.dir / "handouts" / "noa.zip") as z:
        z.extractall(tmp_path)
    folder = tmp_path / "noa"
    password = next(r for r in csv.DictReader((lab.dir / "passwords" / "roster.csv").open()))["p12 password"]
    url = f"https://localhost:{lab.mtls_port}/whoami"
    for cert_args in (["--cert", "noa.crt", "--key", "noa.key", "--pass", password],
                      ["--cert-type", "P12", "--cert", f"noa-legacy.p12:{password}"],
                      ["--cert-type", "P12", "--cert", f"noa.p12:{password}"]):
        answer = subprocess.run(["curl", "-sS", "--cacert", "server-ca.crt", *cert_args, url], cwd=folder,
                                capture_output=True, text=True)
        assert answer.returncode == 0 and "Hello, noa!" in answer.stdout, (cert_args[:2], answer.stderr)
    wrong = subprocess.run(["curl", "-sS", "--cacert", "server-ca.crt", "--cert", "noa.crt", "--key", "noa.key",
                            "--pass", "not-the-password", url], cwd=folder, capture_output=True, text=True)
    assert wrong.returncode != 0


def test_a_link_in_the_html_readme_ends_where_the_url_does():
    """The Windows line of the HTML README linked to `…/whoami.` (a 404): a sentence's full stop is not
    part of the URL."""
    import re

    from lab.pki.handout import _html

    page = _html("Open https://192.0.2.5:8889/whoami. Or (https://lab.example:8889/hello-world.txt), "
                 "or https://[fd00::5]:8889/whoami; done", "t")
    assert re.findall(r'href="([^"]+)"', page) == ["https://192.0.2.5:8889/whoami",
                                                   "https://lab.example:8889/hello-world.txt",
                                                   "https://[fd00::5]:8889/whoami"]


def test_a_sheet_written_before_logins_is_read_and_kept(rendered):
    """A lab made before display names has passwords/roster.csv with five columns: its rows are kept."""
    ok(run("client", "add", "ann", "ben", *rendered.args()))
    sheet = rendered.dir / "passwords" / "roster.csv"
    sheet.parent.mkdir(mode=0o700, exist_ok=True)
    sheet.write_text("name,zip,p12 password,serial,expiry\nann,ann.zip,oldpassword,7A,2027-01-01\n")
    ok(run("handout", "ben", *rendered.args()))
    rows = {r["login"]: r for r in csv.DictReader(sheet.open(encoding="utf-8-sig"))}
    assert rows["ann"] == {"login": "ann", "name": "ann", "zip": "ann.zip", "p12 password": "oldpassword",
                           "serial": "7A", "expiry": "2027-01-01"}
    assert rows["ben"]["p12 password"] == (rendered.dir / "passwords" / "ben.p12.password").read_text()
