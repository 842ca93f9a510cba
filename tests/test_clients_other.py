"""The .p12 bundles, as students' own clients use them: Node (pfx + passphrase: the password file holds the
password alone, no newline) and Java (keytool, HttpsURLConnection). Against real nginx."""

from __future__ import annotations

import subprocess

import pytest

from helpers import need_tool, ok, run

pytestmark = pytest.mark.docker


@pytest.fixture
def lab(new_lab):
    lab = new_lab()
    ok(run(*lab.up_args()))
    ok(run("client", "add", "nia", *lab.args()))
    return lab


def test_node_pfx_and_passphrase(lab, tmp_path):
    node = need_tool("node", "nodejs")
    script = tmp_path / "whoami.js"
    script.write_text(f"""
const fs = require('fs'), https = require('https');
const dir = {str(lab.dir)!r};
https.get({{host: 'localhost', port: {lab.mtls_port}, path: '/whoami',
  pfx: fs.readFileSync(dir + '/clients/nia/nia.p12'),
  passphrase: fs.readFileSync(dir + '/passwords/nia.p12.password', 'utf8'),
  ca: fs.readFileSync(dir + '/certs/server-ca.crt')}}, res => {{
  let body = ''; res.on('data', d => body += d); res.on('end', () => console.log(body));
}}).on('error', e => {{ console.error(e.message); process.exit(1); }});
""")
    proc = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Hello, nia!")


def test_java_keytool_and_https(lab, tmp_path):
    java = need_tool("java", "default-jre-headless")
    keytool = need_tool("keytool", "default-jre-headless")
    password = (lab.dir / "passwords" / "nia.p12.password").read_text()
    p12 = lab.dir / "clients" / "nia" / "nia.p12"
    listed = subprocess.run([keytool, "-list", "-keystore", str(p12), "-storetype", "PKCS12", "-storepass", password],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "PrivateKeyEntry" in listed.stdout, listed.stdout + listed.stderr
    trust = tmp_path / "trust.p12"
    subprocess.run([keytool, "-importcert", "-noprompt", "-alias", "lab-server-ca", "-file",
                    str(lab.dir / "certs" / "server-ca.crt"), "-keystore", str(trust), "-storetype", "PKCS12",
                    "-storepass", "changeit"], check=True, capture_output=True, timeout=60)
    source = tmp_path / "WhoAmI.java"
    source.write_text(f"""
import java.net.URL; import javax.net.ssl.HttpsURLConnection; import java.io.*;
public class WhoAmI {{ public static void main(String[] a) throws Exception {{
  HttpsURLConnection c = (HttpsURLConnection) new URL("https://localhost:{lab.mtls_port}/whoami").openConnection();
  try (BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream()))) {{
    System.out.println(r.readLine()); }} }} }}
""")
    proc = subprocess.run([java, f"-Djavax.net.ssl.keyStore={p12}", "-Djavax.net.ssl.keyStoreType=PKCS12",
                           f"-Djavax.net.ssl.keyStorePassword={password}", f"-Djavax.net.ssl.trustStore={trust}",
                           "-Djavax.net.ssl.trustStorePassword=changeit", str(source)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("Hello, nia!")
