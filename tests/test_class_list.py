"""A real class: display names in any script, ASCII logins made from them, class lists as spreadsheets
save them, every problem of a list at once, and a class handed out, re-issued and signed without losing
a row. The pages greet a student by their display name (against real nginx, at the end)."""

from __future__ import annotations

import csv
import subprocess
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from helpers import ok, run
from lab.pki import ca, names, students

# Thirty, as a class list has them: accents, apostrophes (both kinds), spaces, non-Latin scripts, a login
# already, and two students of the same name.
CLASS = ["José Núñez", "陈美玲", "Liam O'Connor", "Amélie Poulain", "Ольга Петрова", "محمد علي", "Zoë Ng",
         "Søren Ærø", "Đặng Thị Hoa", "김민준", "Maria Garcia", "Maria Garcia", "Alice Martin", "Nguyễn Văn An",
         "Björk Guðmundsdóttir", "François-Xavier Dupont", "Siobhán Ní Bhriain", "Łukasz Żółć", "Ægir Þór",
         "Χρήστος Παπαδόπουλος", "Ayşe Yılmaz", "Antonín Dvořák", "João Conceição", "Mỹ Linh", "Ömer Çelik",
         "Renée O’Brien", "Jürgen Groß", "İbrahim Şahin", "佐藤 花子", "alice"]


def test_logins_are_ascii_stable_and_unique():
    assert names.login_for("José Núñez") == "jose-nunez"
    assert names.login_for("陈美玲") == "chen-mei-ling"
    assert names.login_for("Liam O'Connor") == "liam-oconnor" == names.login_for("Liam O’Connor")
    assert names.login_for("Alice_Martin") == "Alice_Martin"       # a login already: labs of before keep theirs
    asked = [names.Asked(n, origin=f"c.txt line {i}") for i, n in enumerate(CLASS, 1)]
    chosen, problems = names.assign(asked, {}, ["client", "demo-student"])
    assert problems == [] and len({e.login.lower() for e in chosen}) == 30
    assert all(names.LOGIN_RE.fullmatch(e.login) and e.login.isascii() for e in chosen)
    garcias = [e.login for e in chosen if e.display == "Maria Garcia"]
    assert garcias == ["maria-garcia", "maria-garcia-2"]
    # The same list again, with the lab as it now is: the same logins (the students are found, not doubled).
    again, _ = names.assign(asked, {e.login: e.display for e in chosen}, ["client"])
    assert [e.login for e in again] == [e.login for e in chosen]
    # Someone of the same name later is another student, with a login of their own.
    later, _ = names.assign([names.Asked("José Núñez"), names.Asked("Jose Nunez")], {"jose-nunez": "José Núñez"}, [])
    assert [e.login for e in later] == ["jose-nunez", "jose-nunez-2"]
    # A display name never makes a reserved login.
    made, _ = names.assign([names.Asked("Demo Student"), names.Asked("Client CA")], {}, ["demo-student", "client-ca"])
    assert [e.login for e in made] == ["demo-student-2", "client-ca-2"]


@pytest.mark.parametrize("text", [
    "name,email\nJosé Núñez,jose@example.org\n\"Núñez, José\",jn@example.org\n",
    "Name;Login\nJosé Núñez;\nNúñez, José;\n",                # Excel in much of Europe: semicolons
    "name\tlogin\r\nJosé Núñez\t\r\nNúñez, José\t\r\n",        # tab-separated, Windows line ends
])
def test_a_csv_class_list_as_spreadsheets_save_it(tmp_path, text):
    path = tmp_path / "class.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())          # "CSV UTF-8" starts with the byte-order mark
    asked, problems = names.read_class_list(path)
    assert problems == [] and [a.display for a in asked] == ["José Núñez", "Núñez, José"]
    assert asked[0].origin == "class.csv line 2"


def test_every_problem_of_a_class_list_is_reported_at_once_and_nothing_is_issued(rendered, tmp_path):
    path = tmp_path / "class.csv"
    path.write_text("name,login\nAna Lima,\nBad <b>,\n,\nBob,client\nCarl,cj\nDora,cj\nEve$,\nFinn,../x\n")
    before = ca.ca_records(rendered.dir)
    result = run("client", "add", "--from-file", path, *rendered.args())
    assert result.exit_code == 2 and "6 problems in the class list: nothing was issued" in result.output
    for line in ("class.csv line 3: 'Bad <b>': '<' is not allowed", "class.csv line 5: student name 'client' is reserved",
                 "class.csv line 6: login 'cj' is given to more than one student", "class.csv line 7: login 'cj'",
                 "class.csv line 8: 'Eve$': '$' is not allowed", "class.csv line 9: login '../x' is not"):
        assert line in result.output, result.output
    assert ca.ca_records(rendered.dir) == before
    assert not (rendered.dir / "clients").exists() or not any((rendered.dir / "clients").iterdir())


def _sheet(lab_dir) -> dict[str, dict]:
    with (lab_dir / "passwords" / "roster.csv").open(encoding="utf-8-sig") as f:
        return {r["login"]: r for r in csv.DictReader(f)}


def _opens(zip_path, login: str, password: str) -> None:
    with zipfile.ZipFile(zip_path) as z:
        modern = pkcs12.load_pkcs12(z.read(f"{login}/{login}.p12"), password.encode())
        legacy = pkcs12.load_pkcs12(z.read(f"{login}/{login}-legacy.p12"), password.encode())
        serialization.load_pem_private_key(z.read(f"{login}/{login}.key"), password.encode())
    assert modern.cert is not None and legacy.cert is not None
    assert modern.cert.certificate.serial_number == legacy.cert.certificate.serial_number


def test_a_class_of_thirty_issued_handed_out_reissued_and_signed_loses_no_row(rendered, tmp_path):
    class_list = tmp_path / "class.txt"
    class_list.write_text("# Workshop, December\n" + "\n".join(CLASS) + "\n", encoding="utf-8-sig")
    result = ok(run("client", "add", "--from-file", class_list, *rendered.args()))
    assert "José Núñez (login jose-nunez)" in result.output and "陈美玲 (login chen-mei-ling)" in result.output
    found = {s.name: s for s in students.list_students(rendered.dir)}
    assert len(found) == 30 and sorted(s.display for s in found.values()) == sorted(CLASS)
    jose = found["jose-nunez"]
    cert = x509.load_pem_x509_certificate(jose.file("crt").read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
    assert cn.value == "José Núñez" and cn._type.name == "UTF8String"
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "jose-nunez"
    # The pages' list of display names, by the serial nginx writes.
    listed = (rendered.dir / "crl" / "students.map").read_text(encoding="utf-8")
    assert f'{ca.der_serial(cert.serial_number)} "José Núñez";' in listed and '"陈美玲";' in listed

    ok(run("handout", "--all", *rendered.args()))
    assert len(_sheet(rendered.dir)) == 30
    # A routine re-issue, by display name, then handing that student out again.
    ok(run("client", "add", "--force", "José Núñez", *rendered.args()))
    assert students.find(rendered.dir, "jose-nunez").serial != jose.serial
    ok(run("handout", "José Núñez", *rendered.args()))
    # A student's own request, with their name in UTF-8, signed and handed out.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ólafur Arnalds")]))
           .sign(key, hashes.SHA256()))
    request = tmp_path / "olafur.csr"
    request.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    signed = ok(run("client", "sign", request, *rendered.args()))
    assert "Ólafur Arnalds (login olafur-arnalds)" in signed.output
    ok(run("handout", "olafur-arnalds", *rendered.args()))

    sheet = _sheet(rendered.dir)
    assert len(sheet) == 31 and sheet["jose-nunez"]["name"] == "José Núñez"
    assert sheet["olafur-arnalds"]["p12 password"] == ""          # their key never left them
    for login, row in sheet.items():
        if row["p12 password"]:
            assert row["p12 password"] == (rendered.dir / "passwords" / f"{login}.p12.password").read_text()
            _opens(rendered.dir / "handouts" / row["zip"], login, row["p12 password"])
    assert (rendered.dir / "passwords" / "roster.csv").read_bytes().startswith(b"\xef\xbb\xbf")   # Excel reads it
    with zipfile.ZipFile(rendered.dir / "handouts" / "jose-nunez.zip") as z:
        readme = z.read("jose-nunez/README.txt").decode()
    assert "José Núñez's certificate" in readme and 'says "Hello, José Núñez!"' in readme
    assert "--cert jose-nunez.crt" in readme

    # The same class list again: everyone is found, no one is issued twice.
    again = ok(run("client", "add", "--from-file", class_list, *rendered.args()))
    assert "issued" not in again.output.split("kept:")[0] and len(students.list_students(rendered.dir)) == 31
    # Two students of the same name: a command names the login.
    ambiguous = run("client", "revoke", "Maria Garcia", *rendered.args())
    assert ambiguous.exit_code == 2 and "give the login (maria-garcia, maria-garcia-2)" in ambiguous.output
    ok(run("client", "revoke", "maria-garcia-2", *rendered.args()))
    assert students.find(rendered.dir, "maria-garcia").status == "valid"


def test_openssl_reads_the_name_the_lab_wrote(rendered):
    ok(run("client", "add", "陈美玲", *rendered.args()))
    crt = rendered.dir / "clients" / "chen-mei-ling" / "chen-mei-ling.crt"
    shown = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus"],
                           capture_output=True, text=True, check=True).stdout
    assert "UID=chen-mei-ling" in shown and "CN=陈美玲" in shown


@pytest.mark.docker
def test_the_pages_greet_a_student_by_their_display_name(module_lab):
    import http.client
    import ssl

    lab = module_lab("labtest-names")
    ok(run("client", "add", "José Núñez", "陈美玲", *lab.args()))      # while the lab runs: no restart

    def whoami(login: str, accept: str = "*/*") -> tuple[int, str]:
        ctx = ssl.create_default_context(cafile=str(lab.dir / "certs" / "server-ca.crt"))
        ctx.load_cert_chain(str(lab.dir / "clients" / login / f"{login}.crt"),
                            str(lab.dir / "clients" / login / f"{login}.key"))
        conn = http.client.HTTPSConnection("localhost", lab.mtls_port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/whoami", headers={"Accept": accept})
            resp = conn.getresponse()
            assert "charset=utf-8" in (resp.getheader("Content-Type") or "")
            return resp.status, resp.read().decode("utf-8")
        finally:
            conn.close()

    status, body = whoami("jose-nunez")
    assert status == 200 and body.startswith("Hello, José Núñez!"), body
    assert "Jos\\C3\\A9" in body          # the subject as nginx writes it: the lesson of why a list is needed
    status, page = whoami("chen-mei-ling", "text/html,application/xhtml+xml")
    assert status == 200 and "<h1>Hello, 陈美玲!</h1>" in page


def test_slips_to_print_hold_each_students_name_login_url_and_password(rendered):
    ok(run("client", "add", "José Núñez", "陈美玲", "kim", *rendered.args()))
    result = ok(run("handout", "--all", "--slips", *rendered.args()))
    page = rendered.dir / "passwords" / "slips.html"
    assert f"slips to print and cut out: {page}" in result.output
    assert page.stat().st_mode & 0o077 == 0 and not (rendered.dir / "handouts" / "slips.html").exists()
    text = page.read_text(encoding="utf-8")
    assert text.count("class=slip>") == 3
    for login, display in (("jose-nunez", "José Núñez"), ("chen-mei-ling", "陈美玲"), ("kim", "kim")):
        password = (rendered.dir / "passwords" / f"{login}.p12.password").read_text()
        assert f"<div class=name>{display}</div>" in text and f"<code>{login}</code>" in text
        assert f"<code class=p>{password}</code>" in text
        assert password not in result.output
    assert f"https://localhost:{rendered.mtls_port}/hello-world.txt" in text
    # One student handed out again: a page with their slip alone.
    ok(run("handout", "kim", "--slips", *rendered.args()))
    assert page.read_text(encoding="utf-8").count("class=slip>") == 1


def test_the_linux_readme_runs_as_written_for_a_name_with_an_apostrophe(rendered, tmp_path):
    """The clean-up quoted the certificate's nickname in single quotes: "Liam O'Connor (lab)" broke the
    command. Import and clean-up run as written (no browser needed: the NSS database is the point)."""
    from helpers import need_tool
    from test_zip_clients import _nss_list, _readme_commands, _run_as_written

    need_tool("pk12util", "libnss3-tools")
    ok(run("client", "add", "Liam O'Connor", *rendered.args()))
    ok(run("handout", "liam-oconnor", *rendered.args()))
    with zipfile.ZipFile(rendered.dir / "handouts" / "liam-oconnor.zip") as z:
        z.extractall(tmp_path)
    folder, home = tmp_path / "liam-oconnor", tmp_path / "home"
    home.mkdir()
    password = (rendered.dir / "passwords" / "liam-oconnor.p12.password").read_text()
    readme = (folder / "README-linux.txt").read_text(encoding="utf-8")
    _run_as_written(_readme_commands(readme, "Chrome, Chromium, Edge"), folder, home, password)
    certs, keys = _nss_list(f"sql:{home}/.pki/nssdb")
    assert "Liam O'Connor" in certs and "server CA" in certs
    cleanup = [c for c in _readme_commands(readme, "After the workshop") if "$profile" not in c]
    _run_as_written(cleanup, folder, home, password)
    certs, keys = _nss_list(f"sql:{home}/.pki/nssdb")
    assert "Liam" not in certs and "server CA" not in certs and "no keys found" in keys, certs + keys
