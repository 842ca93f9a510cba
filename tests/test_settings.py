"""Settings: every bad input is refused with a clear message before anything is written."""

import re

import pytest

from lab.core import layout, settings
from lab.core.errors import UsageError
from lab.core.settings import Settings


def test_defaults_are_the_articles():
    s = settings.validate(Settings())
    assert (s.name, s.tls_port, s.mtls_port, s.bind) == ("mtls-lab", 8888, 8889, "127.0.0.1")
    assert s.image == layout.DEFAULT_IMAGE


@pytest.mark.parametrize("name", ["My Lab", "a/b", "UPPER", "", "-lead", "trail-", "x" * 33, "tab\tname", "new\nline", "trailing\n"])
def test_bad_lab_names(name):
    with pytest.raises(UsageError, match="invalid lab name"):
        settings.validate_name(name)


@pytest.mark.parametrize("port", [0, -1, 65536, 100000])
def test_ports_out_of_range(port):
    with pytest.raises(UsageError, match="1 to 65535"):
        settings.validate(Settings(tls_port=port))


def test_equal_ports():
    with pytest.raises(UsageError, match="both 9000"):
        settings.validate(Settings(tls_port=9000, mtls_port=9000))


@pytest.mark.parametrize("bind,message", [("localhost", "invalid bind address"), ("300.1.1.1", "invalid bind address"),
                                          ("192.0.2.77", "not an address of this machine")])
def test_bad_bind(bind, message):
    with pytest.raises(UsageError, match=message):
        settings.validate_bind(bind)


def test_loopback_binds_are_fine():
    assert settings.validate_bind("127.0.0.2") == "127.0.0.2"
    assert settings.validate_bind("0.0.0.0") == "0.0.0.0"


@pytest.mark.parametrize("san,normal", [("room.local", "DNS:room.local"), ("DNS:Room.Local", "DNS:room.local"),
                                        ("192.0.2.10", "IP:192.0.2.10"), ("IP:::1", "IP:::1")])
def test_sans_normalised(san, normal):
    assert settings.validate_san(san) == normal


@pytest.mark.parametrize("san", ["a b", "x;y", "bad_name.com", "-x.com", "}", "a" * 64 + ".com", "name\nDNS:evil", "room.local\n"])
def test_bad_sans(san):
    with pytest.raises(UsageError, match="invalid --san"):
        settings.validate_san(san)


@pytest.mark.parametrize("days", [0, -5, 826, 100000])
def test_bad_days(days):
    with pytest.raises(UsageError, match="1 to 825"):
        settings.validate_days(days)


@pytest.mark.parametrize("image", ["Nginx", "nginx;rm -rf /", "a b", "nginx:", ":tag", 'x"y', "nginx\n"])
def test_bad_images(image):
    with pytest.raises(UsageError, match="invalid image reference"):
        settings.validate_image(image)


@pytest.mark.parametrize("image", ["nginx", "nginx:1.27.3", "lab-nginx:bookworm", "127.0.0.1:5000/team/nginx:x",
                                   "nginx@sha256:" + "a" * 64])
def test_good_images(image):
    assert settings.validate_image(image) == image


def test_save_and_resolve_precedence(tmp_path):
    settings.save(tmp_path, settings.validate(Settings(name="saved", tls_port=9001, mtls_port=9002)))
    s = settings.resolve(tmp_path, {"tls_port": 9100, "name": None})
    assert (s.name, s.tls_port, s.mtls_port) == ("saved", 9100, 9002)


def test_saved_settings_invalid_yaml(tmp_path):
    (tmp_path / layout.SETTINGS_FILE).write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        settings.resolve(tmp_path, {})


def test_saved_settings_unknown_key(tmp_path):
    (tmp_path / layout.SETTINGS_FILE).write_text("name: x\ncolour: blue\n")
    with pytest.raises(UsageError, match="unknown settings colour"):
        settings.resolve(tmp_path, {})


def test_saved_settings_bad_value_is_validated(tmp_path):
    (tmp_path / layout.SETTINGS_FILE).write_text("tls_port: 70000\n")
    with pytest.raises(UsageError, match="1 to 65535"):
        settings.resolve(tmp_path, {})


@pytest.mark.parametrize("value,says", [
    ("com", "com is a public suffix"), ("co.uk", "co.uk is a public suffix"), ("*.com", "com is a public suffix"),
    ("github.io", "github.io is a public suffix"), ("999.1.1.1", "not an IP address"), ("1.2.3", "not an IP address"),
    ("IP:room-pc", "not an IP address"), ("fe80::1%eth0", "zone id"), ("fe80::zz", "not an IP address"),
])
def test_san_refuses_what_would_widen_or_break_the_ca(value, says):
    """--san com became `permitted DNS:com` in the server CA's name constraints; 999.1.1.1 was taken as a
    DNS name; a zone id passed and failed in OpenSSL."""
    with pytest.raises(UsageError, match=re.escape(says)):
        settings.validate_san(value)


@pytest.mark.parametrize("value,made", [
    ("room-pc.local", "DNS:room-pc.local"), ("instructor-laptop", "DNS:instructor-laptop"), ("10.0.0.5", "IP:10.0.0.5"),
    ("DNS:Lab.Example.org.", "DNS:lab.example.org"), ("fd00::10", "IP:fd00::10"), ("*.room.example.org", "DNS:*.room.example.org"),
])
def test_san_keeps_a_machines_names(value, made):
    assert settings.validate_san(value) == made


def test_students_are_sent_to_addresses_first_and_never_to_a_name_only_this_machine_resolves(monkeypatch):
    """Every handout URL in room mode was https://HOSTNAME:PORT/…, a name that resolved only here (to
    127.0.1.1): most students' first request failed with "Could not resolve host"."""
    import socket

    answers = {"vm": "127.0.1.1", "lab.example.org": "192.0.2.2"}

    def getaddrinfo(name, *args, **kwargs):
        if name not in answers:
            raise socket.gaierror("unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[name], 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    s = Settings(bind="0.0.0.0", mtls_port=9443,
                 sans=("DNS:vm", "DNS:lab.example.org", "DNS:nowhere.example", "IP:192.0.2.2"))
    assert s.student_urls() == ["https://192.0.2.2:9443/hello-world.txt", "https://lab.example.org:9443/hello-world.txt"]
    assert s.unreachable_names() == ["vm", "nowhere.example"]
    assert Settings(bind="127.0.0.1", sans=("IP:192.0.2.2",)).student_urls() == []


def test_a_public_name_comes_first_in_the_certificate_and_every_url(tmp_path):
    """--public-name: the name the instructor knows students reach this machine by (the room's DNS, say),
    first in the server certificate's extra names and in every student URL; never "unreachable"."""
    from helpers import ok, run

    lab = tmp_path / "lab"
    ok(run("render", "--dir", lab, "--name", "labtest-public", "--bind", "0.0.0.0",
           "--public-name", "Lab.Room.Example.org.", "--public-name", "192.0.2.50"))
    from lab.core import settings as lab_settings

    s = lab_settings.resolve(lab, {})
    assert s.public_names == ("DNS:lab.room.example.org", "IP:192.0.2.50")
    assert s.student_urls()[:2] == [f"https://lab.room.example.org:{s.mtls_port}/hello-world.txt",
                                    f"https://192.0.2.50:{s.mtls_port}/hello-world.txt"]
    assert "lab.room.example.org" not in s.unreachable_names()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((lab / "certs" / "server.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans][3:5] == ["lab.room.example.org", "192.0.2.50"]
    # Saved with the lab: a later `lab handout` uses it without the flag.
    ok(run("client", "add", "ann", "--dir", lab))
    ok(run("handout", "ann", "--dir", lab))
    import zipfile

    with zipfile.ZipFile(lab / "handouts" / "ann.zip") as z:
        readme = z.read("ann/README.txt").decode()
    assert f"--pass PASSWORD https://lab.room.example.org:{s.mtls_port}/hello-world.txt" in readme
    bad = run("render", "--dir", tmp_path / "other", "--bind", "0.0.0.0", "--public-name", "com")
    assert bad.exit_code == 2 and "invalid --public-name 'com': com is a public suffix" in bad.output
