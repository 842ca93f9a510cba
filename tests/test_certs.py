"""Certificates: made by scripts/gen-certs.sh, held to `openssl verify -x509_strict`,
reused only when sound, and never left half-written."""

import datetime as dt
import os
import stat
import subprocess

import pytest
from cryptography import x509

from lab.pki import certs
from lab.core import layout, settings
from lab.core.errors import CertificateError
from lab.core.settings import Settings


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    lab_dir = tmp_path_factory.mktemp("lab")
    s = settings.validate(Settings(sans=("room.local", "192.0.2.10")))
    return lab_dir, s, certs.ensure(lab_dir, s)


def openssl_verify(d, purpose, ca, leaf):
    return subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(d / ca), str(d / leaf)],
                          capture_output=True, text=True)


def test_all_files_made(made):
    lab_dir, _, result = made
    assert result.generated
    assert sorted(p.name for p in result.directory.iterdir()) == sorted([*layout.CERT_FILES, layout.CLIENT_CA_DB])
    assert (lab_dir / "crl" / "client-ca.crl").is_file()


@pytest.mark.parametrize("purpose,ca,leaf", [("sslserver", "server-ca.crt", "server.crt"),
                                              ("sslclient", "client-ca.crt", "client.crt")])
def test_strict_verification_passes(made, purpose, ca, leaf):
    proc = openssl_verify(made[2].directory, purpose, ca, leaf)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stdout + proc.stderr


@pytest.mark.parametrize("purpose,ca,leaf", [("sslclient", "server-ca.crt", "server.crt"),   # server cert is not a client cert
                                              ("sslserver", "client-ca.crt", "client.crt"),   # and vice versa
                                              ("sslclient", "server-ca.crt", "client.crt")])  # wrong CA
def test_strict_verification_fails_for_the_wrong_use(made, purpose, ca, leaf):
    assert openssl_verify(made[2].directory, purpose, ca, leaf).returncode != 0


@pytest.mark.parametrize("leaf,reason", [("rogue-client.crt", "unable to get local issuer certificate"),
                                         ("expired-client.crt", "certificate has expired"),
                                         ("wrong-purpose.crt", "unsuitable certificate purpose")])
def test_demo_certificates_fail_for_their_one_reason(made, leaf, reason):
    """Each demo certificate is refused by the client CA for exactly the reason its scenario teaches."""
    lab_dir = made[0]
    proc = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile",
                           str(lab_dir / "certs" / "client-ca.crt"), str(lab_dir / "demo-certs" / leaf)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and reason in proc.stdout + proc.stderr


def test_demo_certificates_live_apart(made):
    lab_dir = made[0]
    assert sorted(p.name for p in (lab_dir / "demo-certs").iterdir()) == sorted(layout.DEMO_FILES
                                                                              + layout.AUTHZ_DEMO_FILES)
    assert not any(p.name.startswith(("rogue", "expired", "wrong")) for p in (lab_dir / "certs").iterdir())
    for key in (lab_dir / "demo-certs").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_instructor_and_the_impostor_share_all_but_their_issuer(made):
    """The authorization demo set: the instructor (client CA) and the impostor (the partner CA) carry the same
    subject, serial and SPIFFE ID; both verify, each against its own CA only; the partner CA has a CRL (nginx
    wants one for every CA it trusts), and the lab's CRL file carries both lists."""
    lab_dir = made[0]
    demo = lab_dir / "demo-certs"
    load = lambda n: x509.load_pem_x509_certificate((demo / n).read_bytes())  # noqa: E731
    real, fake = load("instructor.crt"), load("impostor.crt")
    assert real.subject == fake.subject and real.serial_number == fake.serial_number and real.issuer != fake.issuer
    assert "OU=instructor" in real.subject.rfc4514_string() and "UID=lab-instructor" in real.subject.rfc4514_string()
    uris = [c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) for c in (real, fake)]
    assert uris[0] == uris[1] == [f"spiffe://{made[1].name}/instructor/lab-instructor"]
    for leaf, ca, ok in (("instructor.crt", "certs/client-ca.crt", True), ("impostor.crt", "demo-certs/partner-ca.crt", True),
                         ("impostor.crt", "certs/client-ca.crt", False)):
        proc = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile",
                               str(lab_dir / ca), str(demo / leaf)], capture_output=True, text=True)
        assert (proc.returncode == 0) is ok, (leaf, ca, proc.stdout + proc.stderr)
    crls = (lab_dir / "crl" / "client-ca.crl").read_text().count("BEGIN X509 CRL")
    assert crls == 2 and (demo / "partner-ca.crl").read_text().strip() in (lab_dir / "crl" / "client-ca.crl").read_text()


def test_a_lab_made_before_the_authorization_set_gets_it_and_keeps_its_cas(tmp_path):
    """A lab from before: demo-certs/ without the instructor, partner CA and impostor. `ensure` makes them from
    the lab's own client CA (nothing else changes), and the CRL then carries the partner's list."""
    from lab.pki import ca

    s = settings.validate(Settings())
    certs.ensure(tmp_path, s)
    demo = tmp_path / "demo-certs"
    for name in layout.AUTHZ_DEMO_FILES:
        (demo / name).unlink()
    ca.write_crl(tmp_path)                     # the CRL as such a lab has it: the client CA's list alone
    assert (tmp_path / "crl" / "client-ca.crl").read_text().count("BEGIN X509 CRL") == 1
    before = {n: (tmp_path / "certs" / n).read_bytes() for n in layout.CERT_FILES}
    certs.ensure(tmp_path, s)
    assert all((demo / n).is_file() for n in layout.AUTHZ_DEMO_FILES)
    assert before == {n: (tmp_path / "certs" / n).read_bytes() for n in layout.CERT_FILES}
    instructor = x509.load_pem_x509_certificate((demo / "instructor.crt").read_bytes())
    client_ca = x509.load_pem_x509_certificate((tmp_path / "certs" / "client-ca.crt").read_bytes())
    assert instructor.issuer == client_ca.subject
    assert ca.ensure_fresh_crl(tmp_path)       # the partner's list is missing from the file: made anew
    assert (tmp_path / "crl" / "client-ca.crl").read_text().count("BEGIN X509 CRL") == 2
    assert not ca.ensure_fresh_crl(tmp_path)
    assert not any(p.name.startswith(".lab-certs-") for p in tmp_path.iterdir())


def test_extensions(made):
    d = made[2].directory
    for name in ("server-ca.crt", "client-ca.crt"):
        c = x509.load_pem_x509_certificate((d / name).read_bytes())
        assert c.version == x509.Version.v3
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
    for name, eku in (("server.crt", x509.ExtendedKeyUsageOID.SERVER_AUTH), ("client.crt", x509.ExtendedKeyUsageOID.CLIENT_AUTH)):
        c = x509.load_pem_x509_certificate((d / name).read_bytes())
        assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert c.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
        assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert (c.not_valid_after_utc - c.not_valid_before_utc).days <= layout.MAX_DAYS


def test_server_sans_cover_localhost_and_extras(made):
    assert set(made[2].sans) == {"DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:room.local", "IP:192.0.2.10"}


def test_serials_are_random_and_ca_names_distinct(made, tmp_path):
    other = certs.ensure(tmp_path, settings.validate(Settings()))
    load = lambda d, n: x509.load_pem_x509_certificate((d / n).read_bytes())  # noqa: E731
    for n in ("server-ca.crt", "client-ca.crt", "server.crt", "client.crt"):
        a, b = load(made[2].directory, n), load(other.directory, n)
        assert a.serial_number != b.serial_number and a.serial_number > 2**64
    assert load(made[2].directory, "server-ca.crt").subject != load(other.directory, "server-ca.crt").subject


def test_private_keys_0600_and_dir_0700(made):
    d = made[2].directory
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in layout.CERT_FILES:
        if name.endswith(".key"):
            assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name


def test_second_run_reuses(made):
    lab_dir, s, first = made
    before = (first.directory / "server.crt").read_bytes()
    again = certs.ensure(lab_dir, s)
    assert not again.generated and (again.directory / "server.crt").read_bytes() == before


def test_regenerate_replaces(tmp_path):
    s = settings.validate(Settings())
    first = (certs.ensure(tmp_path, s).directory / "server.crt").read_bytes()
    assert certs.ensure(tmp_path, s, regenerate=True).generated
    assert (tmp_path / "certs" / "server.crt").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lab-cache.json", "certs", "crl", "demo-certs"]  # no temporaries


def test_mismatched_key_is_refused(tmp_path):
    s = settings.validate(Settings())
    certs.ensure(tmp_path, s)
    (tmp_path / "certs" / "client.key").write_bytes((tmp_path / "certs" / "server.key").read_bytes())
    with pytest.raises(CertificateError, match=r"client\.key does not match .*client\.crt") as e:
        certs.ensure(tmp_path, s)
    assert "--regenerate" in e.value.hint


def test_corrupt_certificate_is_refused(tmp_path):
    s = settings.validate(Settings())
    certs.ensure(tmp_path, s)
    (tmp_path / "certs" / "server.crt").write_text("-----BEGIN CERTIFICATE-----\ntruncated")
    with pytest.raises(CertificateError, match=r"server\.crt is not a readable PEM certificate"):
        certs.ensure(tmp_path, s)


def test_missing_file_is_refused(tmp_path):
    s = settings.validate(Settings())
    certs.ensure(tmp_path, s)
    (tmp_path / "certs" / "client.crt").unlink()
    with pytest.raises(CertificateError, match=r"missing client\.crt"):
        certs.ensure(tmp_path, s)


def test_expired_is_refused(tmp_path):
    s = settings.validate(Settings())
    result = certs.ensure(tmp_path, s)
    later = result.not_after + dt.timedelta(days=1)
    with pytest.raises(CertificateError, match="expired on"):
        certs.check_existing(result.directory, s, now=later)


def test_a_new_name_renews_the_server_ca_and_certificate_only(tmp_path):
    first = certs.ensure(tmp_path, settings.validate(Settings()))
    client_ca = (first.directory / "client-ca.crt").read_bytes()
    old_server_ca = (first.directory / "server-ca.crt").read_bytes()
    again = certs.ensure(tmp_path, settings.validate(Settings(sans=("room.local",))))
    assert again.server_renewed and "DNS:room.local" in again.sans
    assert (again.directory / "client-ca.crt").read_bytes() == client_ca        # students' CA untouched
    assert (again.directory / "server-ca.crt").read_bytes() != old_server_ca
    ca = x509.load_pem_x509_certificate((again.directory / "server-ca.crt").read_bytes())
    permitted = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert permitted.critical and "room.local" in [n.value for n in permitted.value.permitted_subtrees]


def test_the_server_ca_vouches_for_the_labs_names_only_and_for_the_labs_lifetime(made, tmp_path):
    """A certificate for another name, signed by the lab's own server CA, is refused by OpenSSL and curl alike."""
    lab_dir, s, result = made
    ca_file = result.directory / "server-ca.crt"
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    names = {str(n.value) for n in constraints.value.permitted_subtrees}
    assert {"localhost", "room.local", "127.0.0.1/32", "::1/128", "192.0.2.10/32"} <= names
    leaf = x509.load_pem_x509_certificate((result.directory / "server.crt").read_bytes())
    assert (ca.not_valid_after_utc - leaf.not_valid_after_utc).days <= 1     # the lab's lifetime, not ten years
    ext = tmp_path / "other.ext"
    ext.write_text("subjectAltName=DNS:www.example.com\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "other.key"), "-subj", "/CN=www.example.com", "-out",
                    str(tmp_path / "other.csr")], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(tmp_path / "other.csr"), "-CA", str(ca_file), "-CAkey",
                    str(result.directory / "server-ca.key"), "-set_serial", "99", "-days", "5", "-extfile", str(ext),
                    "-out", str(tmp_path / "other.crt")], check=True, capture_output=True)
    refused = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), str(tmp_path / "other.crt")],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "permitted subtree violation" in refused.stdout + refused.stderr
    allowed = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), str(result.directory / "server.crt")],
                             capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr


def test_openssl_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CertificateError, match="openssl is not installed"):
        certs.ensure(tmp_path / "lab", settings.validate(Settings()))
    assert not (tmp_path / "lab" / "certs").exists()


def test_openssl_failure_shows_its_message_and_leaves_nothing(tmp_path, monkeypatch):
    # An openssl that fails the way a broken install would: its own stderr must reach the user.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "openssl").write_text("#!/bin/sh\necho 'openssl: broken on purpose' >&2\nexit 1\n")
    os.chmod(fake / "openssl", 0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    with pytest.raises(CertificateError) as e:
        certs.ensure(lab_dir, settings.validate(Settings()))
    assert "broken on purpose" in e.value.details
    assert list(lab_dir.iterdir()) == []


def test_cached_check_never_hides_a_change(tmp_path):
    """The warm path skips re-reading certificates only while their bytes are exactly as checked."""
    s = settings.validate(Settings())
    certs.ensure(tmp_path, s)
    assert certs._recall(tmp_path, s) is not None
    key = tmp_path / "certs" / "client.key"
    key.write_bytes((tmp_path / "certs" / "server.key").read_bytes())
    assert certs._recall(tmp_path, s) is None
    with pytest.raises(CertificateError, match="does not match"):
        certs.ensure(tmp_path, s)
    assert certs._recall(tmp_path, settings.validate(Settings(sans=("other.test",)))) is None


def test_generation_staged_beside_and_discarded(tmp_path):
    s = settings.validate(Settings())
    pending = certs.StagedCertificates(tmp_path, s)
    pending.discard()
    assert list(tmp_path.iterdir()) == []


def test_the_longest_lab_name_fits_every_certificate(tmp_path):
    """A CN is at most 64 characters: a 32-character lab name (the longest allowed) must still make every certificate."""
    name = "a" * 32
    result = certs.ensure(tmp_path, settings.validate(Settings(name=name)))
    assert result.generated and (tmp_path / "demo-certs" / "rogue-ca.crt").is_file()


def test_expiries_are_remembered_by_digest_and_never_stale(tmp_path):
    """lab status/up show the first expiry without reading certificates again, but a
    replaced certificate (or a damaged cache) is read anew."""
    import json
    import shutil

    lab_dir = tmp_path
    certs.ensure(lab_dir, settings.validate(Settings()))
    d = layout.certs_dir(lab_dir)

    def read(name):
        return x509.load_pem_x509_certificate((d / name).read_bytes()).not_valid_after_utc

    first = certs.expiries(lab_dir)
    assert first == {n: read(n) for n in layout.CERT_FILES if n.endswith(".crt")}
    cached = json.loads((lab_dir / ".lab-cache.json").read_text())["expiries"]["files"]
    assert set(cached) == set(first)
    assert certs.expiries(lab_dir) == first
    # A student's own client certificate, expired: the next answer is the new file's.
    shutil.copy(lab_dir / "demo-certs" / "expired-client.crt", d / "client.crt")
    assert certs.expiries(lab_dir)["client.crt"] == read("client.crt") < first["client.crt"]
    # A damaged cache entry with the right digest: read again, not trusted.
    data = json.loads((lab_dir / ".lab-cache.json").read_text())
    data["expiries"]["files"]["server.crt"][1] = "not a date"
    (lab_dir / ".lab-cache.json").write_text(json.dumps(data))
    assert certs.expiries(lab_dir)["server.crt"] == read("server.crt")
    (d / "server.crt").write_text("garbage")
    assert "server.crt" not in certs.expiries(lab_dir)
