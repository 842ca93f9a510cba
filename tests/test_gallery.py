"""The gallery of bad client certificates: each defect real (openssl x509 -text and cryptography say so), each
sent to real nginx, each verdict the one the lab documents for that nginx, and the rows where the standard
and nginx disagree marked and explained. The suite runs on Debian 12's nginx and on Debian testing's
(.ci/run), and the report names the nginx and OpenSSL it judged."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from helpers import ok, run

from lab.core.settings import Settings
from lab.teach import gallery


def text_of(path) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(path)], capture_output=True, text=True,
                          check=True).stdout


def chain_of(lab_dir, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((lab_dir / "gallery-certs" / f"{name}.crt").read_bytes())


def ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A lab's PKI (no engine) and its gallery."""
    from lab.pki import certs

    lab_dir = tmp_path_factory.mktemp("gallery")
    settings = Settings(name="galtest")
    certs.ensure(lab_dir, settings)
    assert gallery.ensure(lab_dir, settings)
    assert not gallery.ensure(lab_dir, settings)        # made once: kept while the client CA is the same
    return lab_dir, settings


def test_every_defect_is_real(made):
    lab_dir, settings = made
    folder = lab_dir / "gallery-certs"
    ca = x509.load_pem_x509_certificate((lab_dir / "certs" / "client-ca.crt").read_bytes())
    assert len(gallery.SPECIMENS) >= 12 and {s.name for s in gallery.SPECIMENS} == \
        {p.stem for p in folder.glob("*.crt")}
    leaf = {s.name: chain_of(lab_dir, s.name)[0] for s in gallery.SPECIMENS}
    text = {s.name: text_of(folder / f"{s.name}.crt") for s in gallery.SPECIMENS}

    leaf["control"].verify_directly_issued_by(ca)
    assert ext(leaf["ca-as-leaf"], x509.BasicConstraints).ca and ext(leaf["ca-as-leaf"], x509.KeyUsage).key_cert_sign
    kcs = leaf["keycertsign-leaf"]
    assert not ext(kcs, x509.BasicConstraints).ca and ext(kcs, x509.KeyUsage).key_cert_sign
    assert ext(leaf["server-eku-no-ku"], x509.KeyUsage) is None
    assert list(ext(leaf["server-eku-no-ku"], x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf["v1"].version == x509.Version.v1 and len(leaf["v1"].extensions) == 0
    assert "Version: 1 (0x0)" in text["v1"] and "X509v3 extensions" not in text["v1"]
    assert "Public-Key: (1024 bit)" in text["rsa-1024"]
    assert re.search(r"Signature Algorithm: ecdsa-with-SHA1", text["sha1"])
    assert "1.3.6.1.4.1.55738.666.1: critical" in text["unknown-critical"]
    assert leaf["not-yet-valid"].not_valid_before_utc > dt.datetime.now(dt.UTC)
    assert "Authority Key Identifier" not in text["no-aki"] and "Authority Key Identifier" in text["control"]
    uris = ext(leaf["two-uri-sans"], x509.SubjectAlternativeName).get_values_for_type(x509.UniformResourceIdentifier)
    assert len(uris) == 2 and all(u.startswith("spiffe://galtest/") for u in uris)
    bad = leaf["bad-signature"]
    assert bad.issuer == ca.subject
    with pytest.raises(InvalidSignature):
        bad.verify_directly_issued_by(ca)
    # The chains: the leaf, then the intermediate the client sends; each intermediate issued by the client CA.
    for name in ("not-a-ca-issuer", "pathlen-exceeded", "name-constraints"):
        first, second = chain_of(lab_dir, name)
        first.verify_directly_issued_by(second)
        second.verify_directly_issued_by(ca)
        assert (folder / f"{name}.chain.pem").read_bytes().strip() in (folder / f"{name}.crt").read_bytes()
    not_ca = chain_of(lab_dir, "not-a-ca-issuer")[1]
    assert not ext(not_ca, x509.BasicConstraints).ca and not ext(not_ca, x509.KeyUsage).key_cert_sign
    assert ext(chain_of(lab_dir, "pathlen-exceeded")[1], x509.BasicConstraints).ca
    assert ext(ca, x509.BasicConstraints).path_length == 0
    nc = ext(chain_of(lab_dir, "name-constraints")[1], x509.NameConstraints)
    assert [g.value for g in nc.permitted_subtrees] == [".example.com"]
    # Every other leaf is the lab's good client profile but for its one defect: from the client CA, clientAuth.
    for name in ("control", "rsa-1024", "sha1", "no-aki", "two-uri-sans", "unknown-critical", "not-yet-valid"):
        assert leaf[name].issuer == ca.subject
        assert list(ext(leaf[name], x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH], name


def test_nothing_secret_or_stray_is_left_beside_the_specimens(made):
    lab_dir, _ = made
    folder = lab_dir / "gallery-certs"
    names = {p.name for p in folder.iterdir()}
    assert "client-ca.key" not in names and "client-ca.crt" not in names
    assert not any(n.startswith(("not-a-ca.", "sub-ca.", "constrained-ca.")) for n in names)   # intermediates' keys
    assert all(stat.S_IMODE((folder / n).stat().st_mode) == 0o600 for n in names if n.endswith(".key"))
    assert not any(p.name.startswith(".lab-certs-") for p in lab_dir.iterdir())
    ca_db = (lab_dir / "certs" / "client-ca-db" / "index.txt").read_text()
    assert "gallery" not in ca_db            # specimens, never students: the CA's database does not list them


def test_a_damaged_specimen_is_made_again(made):
    """A truncated certificate or an emptied key in gallery-certs/ (an editor, a full disk) would have stopped the
    request before it left, with Python's words: the gallery is made anew instead."""
    lab_dir, settings = made
    folder = lab_dir / "gallery-certs"
    crt = folder / "v1.crt"
    crt.write_text(crt.read_text()[:200])
    (folder / "sha1.key").write_text("")
    assert gallery.ensure(lab_dir, settings)
    assert x509.load_pem_x509_certificate(crt.read_bytes()).version == x509.Version.v1
    assert not gallery.ensure(lab_dir, settings)


def test_the_error_numbers_are_openssls(made):
    """The numbers the gallery prints beside nginx's words are OpenSSL's own (openssl verify prints both)."""
    lab_dir, _ = made
    seen = 0
    for s in gallery.SPECIMENS:
        said = gallery._openssl_strict(lab_dir, s)
        found = re.fullmatch(r"(.*) \((\d+)\)", said)
        if found:
            assert gallery.error_number(found.group(1)) == int(found.group(2)), said
            seen += 1
    assert seen >= 8


def test_a_new_ca_takes_the_old_gallery_with_it_and_a_link_is_refused(tmp_path):
    from lab.core.errors import CertificateError
    from lab.pki import certs

    settings = Settings(name="galtest2")
    certs.ensure(tmp_path, settings)
    gallery.ensure(tmp_path, settings)
    certs.ensure(tmp_path, settings, regenerate=True)
    assert not (tmp_path / "gallery-certs").exists()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (tmp_path / "gallery-certs").symlink_to(elsewhere)
    with pytest.raises(CertificateError, match="is a link"):
        gallery.ensure(tmp_path, settings)
    assert list(elsewhere.iterdir()) == [] and not any(p.name.startswith(".lab-certs-") for p in tmp_path.iterdir())


def test_a_misspelt_specimen_is_one_line_and_nothing_is_made(rendered):
    result = run("gallery", "sha-1", *rendered.args())
    assert result.exit_code == 2 and "no gallery certificate 'sha-1'" in result.output
    assert not (rendered.dir / "gallery-certs").exists()
    result = run("curl", "gallery:nope", *rendered.args())
    assert result.exit_code == 2 and "no gallery certificate 'nope'" in result.output


@pytest.fixture(scope="module")
def lab(module_lab):
    return module_lab("labtest-gallery")


@pytest.mark.docker
def test_every_specimen_gets_the_verdict_the_lab_documents(lab):
    result = run("gallery", *lab.args("--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["rows"]}
    assert len(rows) >= 12 and report["changed"] == []
    assert re.fullmatch(r"\d+\.\d+\.\d+", report["nginx"]) and report["openssl"].startswith("3.")
    for r in rows.values():
        assert r["as_documented"] and r["observed"] in r["nginx_documented"] and r["rule"] and r["strict"]
        assert (r["status"] == 200) == (r["observed"] == "SUCCESS")
    assert rows["control"]["observed"] == "SUCCESS" and not rows["control"]["differs"]
    differ = [r for r in rows.values() if r["differs"]]
    assert len(differ) >= 2 and all(r["why"] for r in differ)
    assert {"ca-as-leaf", "v1", "two-uri-sans"} <= {r["name"] for r in differ}
    assert rows["bad-signature"]["error"] == 7 and rows["unknown-critical"]["error"] == 34
    # The validators beside nginx: pyca refuses the CA used as a leaf that nginx lets in.
    assert rows["ca-as-leaf"]["pyca"] != "OK" and rows["control"]["pyca"] == "OK"
    assert rows["rsa-1024"]["seclevel1"] and "level 0: OK" in rows["sha1"]["seclevel1"]
    print(f"\ngallery on nginx {report['nginx']} / OpenSSL {report['openssl']}: "
          + ", ".join(f"{n}={r['observed']}" for n, r in rows.items()))


@pytest.mark.docker
def test_a_verdict_that_changes_is_reported_not_hidden(lab, monkeypatch):
    """Another nginx or OpenSSL may judge a specimen otherwise: the row says what it answered, exit 1."""
    from dataclasses import replace

    changed = tuple(replace(s, nginx=("FAILED:something else",)) if s.name == "v1" else s for s in gallery.SPECIMENS)
    monkeypatch.setattr(gallery, "SPECIMENS", changed)
    result = run("gallery", "v1", *lab.args())
    assert result.exit_code == 1 and "1 of 1 gallery certificates did not get the verdict" in result.output
    assert "nginx: SUCCESS" in result.output and "documented: FAILED:something else" in result.output


@pytest.mark.docker
def test_a_specimen_by_hand_and_its_handshake(lab):
    cwd = lab.dir.parent
    for name, status in (("v1", "200"), ("pathlen-exceeded", "400")):
        command = ok(run("curl", f"gallery:{name}", *lab.args())).output.strip()
        assert command.startswith("curl ")
        shown = subprocess.run(command + " -o /dev/null -w '%{http_code}'", shell=True, cwd=cwd, capture_output=True,
                               text=True, timeout=20)
        assert shown.stdout.strip().endswith(status), (command, shown.stdout, shown.stderr)
    weak = ok(run("curl", "gallery:sha1", *lab.args())).output.strip()
    assert "openssl s_client" in weak and "SECLEVEL=0" in weak       # curl cannot send a SHA-1 certificate
    said = subprocess.run(weak, shell=True, cwd=cwd, capture_output=True, text=True, timeout=20)
    assert "HTTP/1.1 400" in said.stdout and "CA signature digest algorithm too weak" in said.stdout
    seen = json.loads(ok(run("handshake", "gallery:pathlen-exceeded", *lab.args("--json"))).stdout)
    assert seen["http_status"] == 400 and seen["verdict"] in gallery.find("pathlen-exceeded").nginx
    assert "-cert_chain gallery-certs/pathlen-exceeded.chain.pem" in seen["command"]   # the intermediate is sent
    client = next(m for m in seen["messages"] if m["type"] == "Certificate" and m["from"] == "client")
    assert "gallery pathlen-exceeded" in json.dumps(client)


@pytest.mark.docker
def test_the_gallery_on_the_projector(lab):
    """80 columns: a line per specimen (two at most), the verdicts whole, on one 24-line screen."""
    shown = ok(run("gallery", *lab.args(), env={"COLUMNS": "80"})).output
    lines = shown.rstrip("\n").splitlines()
    assert len(lines) <= 24 and "…" not in shown and max(len(line.rstrip()) for line in lines) <= 80, shown
    for s in gallery.SPECIMENS:
        assert s.name in shown
    assert "permitted subtree violation (47)" in shown and "≠ 5 where the standard and nginx disagree" in shown


@pytest.mark.docker
def test_the_gallery_needs_the_server_and_says_so(lab):
    ok(run("down", *lab.args()))
    try:
        result = run("gallery", *lab.args())
        assert result.exit_code != 0 and "there is no server to judge the gallery" in result.output
    finally:
        ok(run(*lab.up_args()))
    away = run("gallery", *lab.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert away.exit_code != 0 and "Traceback" not in away.output and len(away.output.strip().splitlines()) <= 4


def test_what_a_killed_run_left_inside_the_lab_is_removed(rendered):
    """The gallery and the authorization set are made in a folder inside the lab with a copy of the client CA's
    key; SIGKILL cannot be caught. Those folders carry their process's id, and the next `lab render` (or up,
    or down) removes the ones whose process is gone; a live one stays."""
    import os

    gone = subprocess.Popen(["true"])
    gone.wait()
    for kind in ("gallery", "authz", "server"):
        stale = rendered.dir / f".lab-certs-{gone.pid}-{kind}-x1"
        stale.mkdir()
        (stale / "client-ca.key").write_text("a copy of the CA key\n")
    live = rendered.dir / f".lab-certs-{os.getpid()}-gallery-x2"
    live.mkdir()
    try:
        ok(run("render", *rendered.args()))
        assert [p.name for p in rendered.dir.glob(".lab-certs-*")] == [live.name]
    finally:
        live.rmdir()
