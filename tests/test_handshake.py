"""lab handshake: the real message sequence of each scenario, as openssl s_client -msg reports it;
keys and a capture that tshark decrypts."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from helpers import need_tool, ok, run
from lab.teach import handshake as hs

SCENARIOS = ["trusted", "untrusted", "insecure", "wrong-name", "client-cert", "no-cert", "rogue-ca", "expired",
             "wrong-purpose"]


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-handshake")
    ok(run("client", "add", "rita", "sam", *lab.args()))
    ok(run("client", "revoke", "sam", *lab.args()))
    return lab


def shown(lab, *args) -> dict:
    return json.loads(ok(run("handshake", *args, *lab.args("--json"))).stdout)


def sequence(messages, until_client_finished=True) -> list[tuple[str, str]]:
    out = []
    for m in messages:
        out.append((m["from"], m["type"]))
        if until_client_finished and m["from"] == "client" and m["type"] in ("Finished", "Alert"):
            break
    return out


@pytest.mark.docker
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("tls", [None, "1.2"])
def test_the_sequence_is_what_s_client_msg_reports(lab, scenario, tls):
    data = shown(lab, scenario, *(["--tls", tls] if tls else []))
    assert data["scenario"] == scenario
    # The same scenario, run by hand with the printed command: the same messages, in the same order.
    assert data["command"].startswith("printf ") and " | openssl s_client " in data["command"]
    by_hand = subprocess.run(["bash", "-c", data["command"]], cwd=lab.dir, capture_output=True, text=True, timeout=20)
    expected = [(m.sender, m.type) for m in hs.parse_msg(by_hand.stdout)]
    got = sequence(data["messages"])
    assert got == expected[:len(got)], (got, expected)
    if tls:
        assert data["tls_version"] in ("TLSv1.2", None)


@pytest.mark.docker
def test_the_tls_server_sends_no_certificate_request_and_the_mtls_server_does(lab):
    plain = shown(lab, "trusted")
    assert "CertificateRequest" not in [m["type"] for m in plain["messages"]] and plain["http_status"] == 200
    mutual = shown(lab, "client-cert")
    request = next(m for m in mutual["messages"] if m["type"] == "CertificateRequest")
    assert request["from"] == "server" and request["mtls_only"]
    assert len(request["certificate_authorities"]) == 1 and "Client CA" in request["certificate_authorities"][0]
    client_cert = next(m for m in mutual["messages"] if m["type"] == "Certificate" and m["from"] == "client")
    assert client_cert["subject"].startswith(f"CN={lab.name} student client")
    assert mutual["http_status"] == 200 and mutual["verdict"] == "SUCCESS"
    text = ok(run("handshake", *lab.args())).output
    assert "CertificateRequest" in text and "mTLS" in text and "everything below is encrypted" in text


@pytest.mark.docker
def test_no_cert_sends_an_empty_certificate_then_gets_400(lab):
    data = shown(lab, "no-cert")
    client_cert = next(m for m in data["messages"] if m["type"] == "Certificate" and m["from"] == "client")
    assert client_cert["subject"] is None
    assert data["http_status"] == 400 and data["verdict"] == "NONE"
    assert "empty: the client has no certificate to send" in ok(run("handshake", "no-cert", *lab.args())).output


@pytest.mark.docker
def test_untrusted_shows_the_clients_alert(lab):
    data = shown(lab, "untrusted")
    alert = data["messages"][-1]
    assert alert == {"from": "client", "type": "Alert", "level": "fatal", "description": "unknown_ca"}
    assert data["http_status"] is None and "unable to get local issuer certificate" in data["failure"]


@pytest.mark.docker
def test_tls_1_2_says_its_certificates_cross_in_clear(lab):
    text = ok(run("handshake", "client-cert", "--tls", "1.2", *lab.args())).output
    assert "ServerHelloDone" in text and "cross the network in clear" in text


@pytest.mark.docker
def test_as_a_student_and_as_a_revoked_one(lab):
    rita = shown(lab, "--as", "rita")
    assert next(m for m in rita["messages"] if m["type"] == "Certificate" and m["from"] == "client")["subject"] \
        .startswith("CN=rita,")
    sam = shown(lab, "--as", "sam")      # revoked: not an error, a story of its own
    assert sam["scenario"] == "revoked" and sam["http_status"] == 400
    assert sam["verdict"] == "FAILED:certificate revoked"


@pytest.mark.docker
def test_keylog_and_pcap_decrypt_in_tshark(lab, tmp_path):
    tshark = need_tool("tshark", "tshark")
    need_tool("tcpdump", "tcpdump")
    keys, pcap = tmp_path / "session keys.log", tmp_path / "one capture.pcap"   # spaces: printed quoted
    text = ok(run("handshake", "client-cert", "--keylog", keys, "--pcap", pcap, *lab.args())).output
    assert f"tls.keylog_file:{keys}" in text
    assert keys.stat().st_mode & 0o077 == 0 and pcap.stat().st_mode & 0o077 == 0   # secrets: the owner's alone
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keys.read_text()
    fields = subprocess.run([tshark, "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={lab.mtls_port},tls",
                             "-Y", "tls.handshake.type",
                             "-T", "fields", "-e", "tcp.srcport", "-e", "tls.handshake.type"],
                            capture_output=True, text=True, timeout=120)
    assert fields.returncode == 0, fields.stderr
    seen = set()
    for line in fields.stdout.splitlines():
        port, types = line.split("\t")
        side = "server" if int(port) == lab.mtls_port else "client"
        seen |= {(side, int(t)) for t in types.split(",") if t}
    assert ("server", 13) in seen                       # CertificateRequest, decrypted
    assert ("server", 11) in seen and ("client", 11) in seen   # Certificate, from both sides
    assert not list(tmp_path.glob(".*.part"))
    # The command lab prints, run as printed: it decodes the decrypted handshake.
    printed = next(line for line in text.splitlines() if "decrypted: " in line)
    cmd = shlex.split(printed.split("decrypted: ", 1)[1].split("   (Wireshark")[0])
    assert cmd[0] == "tshark"
    shown = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "Handshake Type: Certificate Request (13)" in shown.stdout
    assert "Handshake Type: Certificate (11)" in shown.stdout


@pytest.mark.docker
@pytest.mark.faults
def test_handshake_bad_input(lab, tmp_path, new_lab):
    assert run("handshake", "nope", *lab.args()).exit_code == 2
    old = run("handshake", "--tls", "1.1", *lab.args())
    assert old.exit_code == 2 and "TLS 1.2 and 1.3 only" in old.output
    (tmp_path / "folder").mkdir()
    for target in (tmp_path / "folder", tmp_path / "missing" / "x.pcap"):
        bad = run("handshake", "--pcap", target, *lab.args())
        assert bad.exit_code == 2 and "--pcap" in bad.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]      # nothing half-written
    unknown = run("handshake", "--as", "nobody", *lab.args())
    assert unknown.exit_code == 2 and "no student named 'nobody'" in unknown.output
    down = new_lab()
    ok(run("render", *down.args("--image", down.image)))
    stopped = run("handshake", *down.args())
    assert stopped.exit_code == 3 and "is not running" in stopped.output and "lab up" in stopped.output


def test_parse_msg_reads_messages_and_alerts():
    text = ">>> TLS 1.3, Handshake [length 0136], ClientHello\n    01 00 01 32\n" \
           "<<< TLS 1.2, RecordHeader [length 0005]\n<<< TLS 1.3, Alert [length 0002], fatal unknown_ca\n    02 30\n"
    got = hs.parse_msg(text)
    assert [(m.sender, m.type) for m in got] == [("client", "ClientHello"), ("server", "Alert")]
    assert got[0].raw == bytes.fromhex("01000132") and got[1].details == {"level": "fatal", "description": "unknown_ca"}


@pytest.mark.faults
def test_an_existing_keylog_or_pcap_is_never_overwritten(rendered, tmp_path):
    """An existing --keylog or --pcap file was overwritten without a word."""
    existing = tmp_path / "mine.log"
    existing.write_text("my notes\n")
    for option in ("--keylog", "--pcap"):
        result = run("handshake", option, existing, *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
        assert result.exit_code == 2 and "already exists: lab does not overwrite it" in result.output
    assert existing.read_text() == "my notes\n"


@pytest.mark.docker
def test_the_handshake_on_an_80_column_projector(lab):
    """63 to 80 lines at 80 columns, "what it carries" cut at about 15 characters (`TLS_AES_256_GC…`)."""
    shown = ok(run("handshake", *lab.args(), env={"COLUMNS": "80"})).output
    lines = [line for line in shown.splitlines() if "see it yourself" not in line]
    assert "…" not in shown and all(len(line.rstrip()) <= 80 for line in lines)
    assert "TLS_AES_256_GCM_SHA384" in shown or "TLS_AES_128_GCM_SHA256" in shown or "TLS_CHACHA20" in shown
    assert len(shown.splitlines()) <= 30      # (24 is the aim; long lab names fold their DNs)


@pytest.mark.docker
def test_tls_1_2_shows_the_servers_change_cipher_spec_as_it_is_on_the_wire(lab, tmp_path):
    """`openssl s_client -msg` does not report the ChangeCipherSpec it receives: the TLS 1.2 diagram left out
    the server's, which a capture shows right before the server's Finished."""
    tshark = need_tool("tshark", "tshark")
    need_tool("tcpdump", "tcpdump")
    pcap = tmp_path / "tls12.pcap"
    data = json.loads(ok(run("handshake", "client-cert", "--tls", "1.2", "--pcap", pcap, *lab.args("--json"))).stdout)
    seq = [(m["from"], m["type"]) for m in data["messages"]]
    finished = seq.index(("server", "Finished"))
    assert seq[finished - 1] == ("server", "ChangeCipherSpec"), seq
    wire = subprocess.run([tshark, "-r", str(pcap), "-d", f"tcp.port=={lab.mtls_port},tls", "-Y",
                           "tls.record.content_type == 20", "-T", "fields", "-e", "tcp.srcport"],
                          capture_output=True, text=True, timeout=120)
    assert wire.returncode == 0 and str(lab.mtls_port) in wire.stdout.split(), wire.stdout + wire.stderr
    # Every other message as s_client -msg reports it, in its order.
    by_hand = subprocess.run(["bash", "-c", data["command"]], cwd=lab.dir, capture_output=True, text=True, timeout=20)
    reported = [(m.sender, m.type) for m in hs.parse_msg(by_hand.stdout)]
    assert [x for x in seq if x != ("server", "ChangeCipherSpec")] == reported, (seq, reported)
