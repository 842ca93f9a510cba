"""A class issued in one `openssl ca` run, keys and bundles made in-process (lab/pki/bundle.py): every certificate
as strict and as named as one issued alone, the CA database still the one authority, nothing left half-made."""

from __future__ import annotations

import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from helpers import ok, run
from lab.pki import ca, students

CLASS = ["José Núñez", "陈美玲", "Zoë O'Brien", "Ana", "Björn"]


def _subject_types(cert: x509.Certificate) -> set:
    return {a._type for a in cert.subject}     # noqa: SLF001 (the ASN.1 string type of each attribute)


def test_a_class_is_issued_in_one_run_in_its_order_each_certificate_strict(rendered, tmp_path):
    roster = tmp_path / "class.txt"
    roster.write_text("\n".join(CLASS) + "\n", encoding="utf-8")
    before = len(ca.ca_records(rendered.dir))
    out = ok(run("client", "add", "--from-file", roster, *rendered.args())).output
    records = ca.ca_records(rendered.dir)[before:]
    assert [r.display for r in records] == CLASS                 # signed in the class's order …
    serials = [r.serial for r in records]
    assert serials == sorted(serials) and len(set(serials)) == len(CLASS)   # … with the database's serials
    for record in records:
        assert record.status == "V" and record.login in out
        folder = rendered.dir / "clients" / record.login
        crt = folder / f"{record.login}.crt"
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        assert cert.serial_number == record.serial
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == record.display
        assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == record.login
        assert _subject_types(cert) == {x509.name._ASN1Type.UTF8String}   # noqa: SLF001
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(u.value) for u in uris] == [f"spiffe://{rendered.name}/student/{record.login}"]
        strict = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile",
                                 str(folder / "client-ca.crt"), str(crt)], capture_output=True, text=True)
        assert strict.returncode == 0, strict.stdout + strict.stderr
        # The CA's own copy (what a revocation names) is this very certificate.
        copy = rendered.dir / "certs" / "client-ca-db" / "issued" / f"{record.serial_hex}.pem"
        assert copy.read_bytes() == crt.read_bytes()
        for private in (f"{record.login}.key", f"{record.login}.p12"):
            assert stat.S_IMODE((folder / private).stat().st_mode) == 0o600
        password = (rendered.dir / "passwords" / f"{record.login}.p12.password").read_bytes()
        p12 = pkcs12.load_pkcs12((folder / f"{record.login}.p12").read_bytes(), password)
        assert p12.cert is not None and p12.cert.certificate == cert and p12.additional_certs == []
        assert p12.cert.friendly_name == f"{record.display} ({rendered.name})".encode()
        assert p12.key is not None and p12.key.public_key() == cert.public_key()
    clients = rendered.dir / "clients"
    assert sorted(p.name for p in clients.iterdir() if p.name.startswith(".")) == []    # no staging left
    assert "copy_extensions" not in (rendered.dir / "certs" / "client-ca-db" / "ca.cnf").read_text()


def test_an_instructor_gets_the_role_in_the_subject_and_the_spiffe_id(rendered):
    ok(run("client", "add", "--role", "instructor", "Inés Ortiz", *rendered.args()))
    cert = x509.load_pem_x509_certificate((rendered.dir / "clients" / "ines-ortiz" / "ines-ortiz.crt").read_bytes())
    units = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert units == [rendered.name, "instructor"]
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(u.value) for u in uris] == [f"spiffe://{rendered.name}/instructor/ines-ortiz"]
    assert [r.role for r in ca.ca_records(rendered.dir) if r.login == "ines-ortiz"] == ["instructor"]


def test_openssl_refusing_the_batch_issues_nobody_and_leaves_nothing(rendered):
    """openssl ca writes its database once, after every request is signed: one it cannot sign (here its serial
    file is damaged) leaves the database as it was, and no folder, request or password is left behind."""
    db = rendered.dir / "certs" / "client-ca-db"
    index = (db / "index.txt").read_bytes()
    good = (db / "serial").read_text()
    (db / "serial").write_text("not a serial\n")
    result = run("client", "add", "José Núñez", "陈美玲", *rendered.args())
    assert result.exit_code != 0
    assert "scripts/client-ca.sh issue-many failed" in result.output and "Traceback" not in result.output
    assert (db / "index.txt").read_bytes() == index
    assert not (rendered.dir / "clients").exists() or list((rendered.dir / "clients").iterdir()) == []
    assert not list((rendered.dir / "passwords").glob("*.password")) if (rendered.dir / "passwords").exists() else True
    (db / "serial").write_text(good)
    ok(run("client", "add", "José Núñez", "陈美玲", *rendered.args()))       # mended, the same command works


def test_a_failure_while_folders_land_keeps_what_landed_and_revokes_the_rest(rendered, monkeypatch):
    """A folder that cannot be made (here the third) after the CA signed the whole class: the folders that landed
    are kept, and every certificate signed for a student whose folder never came is revoked (nobody holds its key,
    yet a valid certificate without an owner is what an audit must never find)."""
    from lab.core.settings import Settings

    real = students._place
    names = [f"s{i}" for i in range(6)]

    def place(lab_dir, settings, student, *args):
        if student.login == "s2":
            raise OSError(28, "No space left on device")
        return real(lab_dir, settings, student, *args)

    monkeypatch.setattr(students, "_place", place)
    settings = Settings(name=rendered.name)
    with pytest.raises(OSError):
        students.add(rendered.dir, settings, names)
    valid = {r.login for r in ca.ca_records(rendered.dir) if r.status == "V" and r.login in names}
    folders = {p.name for p in (rendered.dir / "clients").iterdir()}
    assert valid == folders - {"s2"} and "s2" not in valid        # no valid certificate without its folder
    assert all(not p.name.startswith(".") for p in (rendered.dir / "clients").iterdir())
    monkeypatch.undo()
    again, skipped = students.add(rendered.dir, settings, names, skip_existing=True)
    assert sorted(i.name for i in again) == sorted(set(names) - folders) and sorted(skipped) == sorted(folders)


def test_ctrl_c_while_folders_land_says_what_was_kept_and_revoked(rendered, monkeypatch):
    from lab.core.errors import Interrupted
    from lab.core.settings import Settings

    real = students._place

    def place(lab_dir, settings, student, *args):
        if student.login == "s3":
            raise KeyboardInterrupt
        return real(lab_dir, settings, student, *args)

    monkeypatch.setattr(students, "_place", place)
    with pytest.raises(Interrupted) as caught:
        students.add(rendered.dir, Settings(name=rendered.name), [f"s{i}" for i in range(5)])
    message = str(caught.value)
    assert "of 5 students issued and kept" in message and "s3" in message.split("not issued:")[1]
    assert "revoked" in message
    orphans = [r.login for r in ca.ca_records(rendered.dir)
               if r.status == "V" and not (rendered.dir / "clients" / r.login).is_dir() and r.login.startswith("s")]
    assert orphans == []


def test_lab_trace_says_where_a_class_issue_spends_its_time(rendered, tmp_path):
    """LAB_TRACE=FILE (for bench/room.py and bench/compare.py): one JSON line per span, per-student spans summed
    with their count; nothing on screen."""
    import json
    import os
    import sys

    trace = tmp_path / "trace.jsonl"
    proc = subprocess.run([sys.executable, "-m", "lab", "client", "add", "Ana", "Björn", "陈美玲", *map(str, rendered.args())],
                          capture_output=True, text=True, env={**os.environ, "LAB_TRACE": str(trace)})
    assert proc.returncode == 0, proc.stderr
    assert "LAB_TRACE" not in proc.stdout + proc.stderr
    spans = {s["span"]: s for s in map(json.loads, trace.read_text().splitlines())}
    assert spans["issue: openssl ca, every request in one run"]["count"] == 1
    assert spans["issue: key and bundle (per student)"]["count"] == 3
    assert spans["issue: README (per student)"]["count"] == 3
    assert 0 < spans["start: Python, lab's imports, the command line"]["seconds"] < 60
    untraced = subprocess.run([sys.executable, "-m", "lab", "client", "add", "Dora", *map(str, rendered.args())],
                              capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "LAB_TRACE"})
    assert untraced.returncode == 0 and len(trace.read_text().splitlines()) == len(spans)    # nothing added


def test_a_long_name_in_any_script_is_issued_as_one_issued_alone_was(rendered):
    """A common name holds 64 characters (OpenSSL counts characters), whatever their UTF-8 length: a 42-letter
    Cyrillic name (80 bytes) and 64 Chinese characters (192 bytes) are issued, strict-valid, and no command that
    reads them back prints cryptography's warning about their length (it counts bytes)."""
    import sys

    long_names = ["Александр Сергеевич Пушкин-Голенищев-Кутузов"[:42], "陈" * 64]
    for command in (["client", "add", *long_names], ["client", "list"], ["certs"]):
        proc = subprocess.run([sys.executable, "-m", "lab", *command, *map(str, rendered.args())],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr and "Attribute" not in proc.stderr, proc.stderr
    for record in [r for r in ca.ca_records(rendered.dir) if r.display in long_names]:
        crt = rendered.dir / "clients" / record.login / f"{record.login}.crt"
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == record.display
        strict = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile",
                                 str(rendered.dir / "certs" / "client-ca.crt"), str(crt)], capture_output=True, text=True)
        assert strict.returncode == 0, strict.stdout + strict.stderr
    assert sorted(r.display for r in ca.ca_records(rendered.dir) if r.display in long_names) == sorted(long_names)
    too_long = run("client", "add", "陈" * 65, *rendered.args())
    assert too_long.exit_code == 2 and "holds 64" in too_long.output
