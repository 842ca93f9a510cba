"""The gallery of bad client certificates: each specimen broken in one way, sent to the running mTLS server,
and judged three more ways: what the standards say (RFC 5280, the CA/Browser Forum's requirements, SPIFFE),
this machine's OpenSSL held strict (`openssl verify -x509_strict`), and pyca/cryptography's verifier (one of
the validators x509-limbo grades). Where the standard and nginx disagree the row is marked and explained.

The certificates are made by scripts/gallery-certs.sh from the lab's client CA into gallery-certs/ (never
into the CA's database: they are specimens, not students). What nginx does with each is documented here, per
row; a row whose observed verdict differs (another nginx, another OpenSSL) is reported, not hidden.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lab.core import layout
from lab.core.concurrent import each
from lab.core.errors import CertificateError, UsageError
from lab.core.resources import scripts_dir
from lab.core.settings import Settings

DIR = layout.GALLERY_DIR
#: What a modern client refuses to send at its default security level; the lab's client lowers it (the server
#: is under test), and `lab gallery` shows what OpenSSL says at the lower levels.
WEAK = ("rsa-1024", "sha1")
PREFIX = "gallery:"
Verdict = Literal["accept", "refuse"]


@dataclass(frozen=True)
class Specimen:
    name: str
    wrong: str                   # what is wrong with it, in a line
    rule: str                    # the rule it breaks
    strict: Verdict              # what a strict validator is expected to do (the rule's verdict)
    nginx: tuple[str, ...]       # what the lab documents nginx answers ($ssl_client_verify), any of these
    limbo: str = ""              # the x509-limbo case, where one matches
    why: str = ""                # where the standard and nginx disagree: why


SPECIMENS: tuple[Specimen, ...] = (
    Specimen("control", "nothing: a client certificate made like the lab's own", "—", "accept", ("SUCCESS",)),
    Specimen("ca-as-leaf", "a CA certificate (CA:TRUE, keyCertSign) used as a client certificate",
             "CA/B Forum BR 7.1.2.7.8 (cA MUST be false); RFC 5280 allows it", "refuse", ("SUCCESS",),
             "webpki::ca-as-leaf",
             "OpenSSL follows RFC 5280, which says nothing of CA certificates in the leaf position"),
    Specimen("keycertsign-leaf", "a leaf (CA:FALSE) whose keyUsage asserts keyCertSign",
             "RFC 5280 4.2.1.9 (keyCertSign MUST NOT be asserted without cA)", "refuse", ("SUCCESS",),
             "rfc5280::leaf-ku-keycertsign",
             "OpenSSL checks it only under -x509_strict (error 82), which nginx does not set"),
    Specimen("server-eku-no-ku", "no keyUsage at all, and an extendedKeyUsage for servers only",
             "RFC 5280 4.2.1.12 (clientAuth is required by the use)", "refuse",
             ("FAILED:unsuitable certificate purpose",)),
    Specimen("v1", "an X.509 version 1 certificate: no extensions (no constraints, no usage, no SAN)",
             "RFC 5280 4.1.2.1 (the profile is v3); CA/B Forum BR 7.1.1", "refuse", ("SUCCESS",), "",
             "OpenSSL accepts a v1 leaf, as the classic mTLS article's client certificate shows"),
    Specimen("rsa-1024", "an RSA key of 1024 bits", "CA/B Forum BR 6.1.5 (RSA ≥ 2048)", "refuse",
             ("FAILED:EE certificate key too weak",), "",
             ""),
    Specimen("sha1", "signed with SHA-1 (ecdsa-with-SHA1: the client CA's key is ECDSA)",
             "CA/B Forum BR 7.1.3.2 (no SHA-1)", "refuse", ("FAILED:CA signature digest algorithm too weak",)),
    Specimen("unknown-critical", "an extension no one knows (1.3.6.1.4.1.55738.666.1), marked critical",
             "RFC 5280 4.2 (an unrecognized critical extension MUST be rejected)", "refuse",
             ("FAILED:unhandled critical extension",), "rfc5280::unknown-critical-extension-ee"),
    Specimen("not-yet-valid", "notBefore is tomorrow", "RFC 5280 4.1.2.5 (validity)", "refuse",
             # OpenSSL 3.6 adds to the words: "… or the system clock is incorrect".
             ("FAILED:certificate is not yet valid", "FAILED:certificate is not yet valid or the system clock is "
              "incorrect")),
    Specimen("no-aki", "no authorityKeyIdentifier", "RFC 5280 4.2.1.1 (MUST be included)", "refuse", ("SUCCESS",),
             "rfc5280::aki::leaf-missing-aki",
             "OpenSSL wants it only under -x509_strict (error 85); it finds the issuer by name"),
    Specimen("two-uri-sans", "two URI SANs: spiffe://…/student/alice and spiffe://…/instructor/alice",
             "SPIFFE X509-SVID 2 (exactly one URI SAN)", "refuse", ("SUCCESS",), "",
             "X.509 allows any number of SANs; only a SPIFFE-aware peer refuses. nginx has no variable for SANs"),
    Specimen("bad-signature", "the issuer's name is the client CA's, the signature is not (one byte flipped)",
             "RFC 5280 6.1.3 (a)(1) (the signature must verify)", "refuse",
             ("FAILED:certificate signature failure",)),
    Specimen("not-a-ca-issuer", "signed by an \"intermediate\" that is no CA (CA:FALSE, no keyCertSign)",
             "RFC 5280 4.2.1.9 and 6.1.4 (k)", "refuse",
             ("FAILED:key usage does not include certificate signing", "FAILED:invalid CA certificate"),
             "rfc5280::intermediate-ca-without-ca-bit"),
    Specimen("pathlen-exceeded", "signed by an intermediate CA, under a client CA whose pathLenConstraint is 0",
             "RFC 5280 4.2.1.9 and 6.1.4 (l)", "refuse",
             ("FAILED:unable to get certificate CRL", "FAILED:path length constraint exceeded"),
             "pathlen::intermediate-violates-pathlen-0"),
    Specimen("name-constraints", "signed by an intermediate permitted only URIs under example.com; the leaf's is spiffe://",
             "RFC 5280 4.2.1.10 (permittedSubtrees)", "refuse",
             ("FAILED:permitted subtree violation", "FAILED:path length constraint exceeded")),
)

def error_number(verdict: str) -> int | None:
    """The number (X509_V_ERR_*) of an OpenSSL verification error, from the words nginx gives
    ($ssl_client_verify, "FAILED:…"): OpenSSL's own table (X509_verify_cert_error_string), read once. A newer
    OpenSSL may say more than this machine's ("certificate is not yet valid or the system clock is incorrect")."""
    words = verdict.removeprefix("FAILED:")
    table = _errors()
    if words in table:
        return table[words]
    longer = [known for known in table if words.startswith(known + " ")]
    return table[max(longer, key=len)] if longer else None


@functools.cache
def _errors() -> dict[str, int]:
    import ctypes
    import ctypes.util

    found = ctypes.util.find_library("crypto")
    if not found:
        return {}
    try:
        words = ctypes.CDLL(found).X509_verify_cert_error_string
    except (OSError, AttributeError):
        return {}
    words.restype, words.argtypes = ctypes.c_char_p, [ctypes.c_long]
    table: dict[str, int] = {}
    for number in range(1, 128):
        table.setdefault(words(number).decode(errors="replace"), number)
    table.pop("unknown certificate verification error", None)
    return table


def find(name: str) -> Specimen:
    wanted = name.removeprefix(PREFIX)
    for s in SPECIMENS:
        if s.name == wanted:
            return s
    raise UsageError(f"no gallery certificate {wanted!r}: there are {', '.join(s.name for s in SPECIMENS)}",
                     hint="lab gallery lists them")


def folder(lab_dir: Path) -> Path:
    return lab_dir / DIR


def files(lab_dir: Path, name: str) -> tuple[str, str]:
    """(certificate and chain, key), relative to the lab directory."""
    return (f"{DIR}/{name}.crt", f"{DIR}/{name}.key")


def _made(lab_dir: Path) -> bool:
    """Every specimen there and readable, from this lab's client CA (a lab made anew has a new CA, a damaged
    file is no specimen: the gallery is made again)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from lab.pki.ca import load_cert

    here = folder(lab_dir)
    try:
        issuer = load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT).subject
        for s in SPECIMENS:
            chain = x509.load_pem_x509_certificates((here / f"{s.name}.crt").read_bytes())
            load_pem_private_key((here / f"{s.name}.key").read_bytes(), None)
            if s.name == "control" and chain[0].issuer != issuer:
                return False
        return True
    except (OSError, ValueError, TypeError):
        return False


def ensure(lab_dir: Path, settings: Settings, again: bool = False) -> bool:
    """gallery-certs/, made (staged, then moved into place whole) when missing or from another CA; True when made."""
    if not again and _made(lab_dir):
        return False
    certs = layout.certs_dir(lab_dir)
    if not (certs / layout.CLIENT_CA_KEY).is_file():
        raise CertificateError(f"no client CA in {certs}", hint="run `lab up` first")
    from lab.pki.certs import staging_dir

    tmp = staging_dir(lab_dir, "gallery")
    try:
        for name in (layout.CLIENT_CA_CRT, layout.CLIENT_CA_KEY):
            shutil.copyfile(certs / name, tmp / name)
        proc = subprocess.run(["bash", str(scripts_dir() / "gallery-certs.sh"), "--out", str(tmp), "--lab",
                               settings.name, "--subject", layout.subject_base(settings.name), "--days",
                               str(settings.days)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CertificateError(f"scripts/gallery-certs.sh failed (exit {proc.returncode})",
                                   details=proc.stderr.strip(), hint="the lines above are OpenSSL's own")
        for name in (layout.CLIENT_CA_CRT, layout.CLIENT_CA_KEY):
            (tmp / name).unlink()      # the CA's key never stays beside the specimens
        old = folder(lab_dir)
        if old.is_symlink():
            raise CertificateError(f"{old} is a link: lab writes the gallery only into a folder of its own")
        if old.exists():
            shutil.rmtree(old)
        tmp.rename(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)      # gone already when it became gallery-certs/
    return True


@dataclass
class Row:
    specimen: Specimen
    nginx: str                   # what nginx answered: SUCCESS, FAILED:…, or what stopped the request
    status: int | None
    openssl: str                 # this machine's OpenSSL, strict: "OK" or the error
    pyca: str                    # pyca/cryptography's client verifier: "OK" or why not
    seclevel1: str = ""          # rsa-1024 and sha1: what OpenSSL says at security levels 1 and 0 instead of 2
    curl: str = ""

    @property
    def accepted(self) -> bool:
        return self.nginx == "SUCCESS"

    @property
    def differs(self) -> bool:
        """The standard and nginx disagree."""
        return (self.specimen.strict == "accept") != self.accepted

    @property
    def as_documented(self) -> bool:
        return self.nginx in self.specimen.nginx

    def to_dict(self) -> dict:
        s = asdict(self.specimen)
        s["nginx_documented"] = list(s.pop("nginx"))
        return {**s, "observed": self.nginx, "status": self.status, "error": error_number(self.nginx),
                "differs": self.differs, "as_documented": self.as_documented, "openssl_strict": self.openssl,
                "pyca": self.pyca, "seclevel1": self.seclevel1 or None, "curl": self.curl}


def scenario(lab_dir: Path, name: str):
    """A specimen as a verify scenario (for lab curl gallery:NAME and lab handshake gallery:NAME)."""
    from lab.teach.verify import Expect, Scenario

    s = find(name)
    documented = s.nginx[0]
    expect = Expect("http", 200 if documented == "SUCCESS" else 400, client_verify=documented)
    return Scenario(PREFIX + s.name, "mtls", f"gallery: {s.wrong} ({s.rule})", expect,
                    client_cert=files(lab_dir, s.name), weak_client=s.name in WEAK)


def _openssl_strict(lab_dir: Path, s: Specimen, level: int = 2) -> str:
    """`openssl verify -x509_strict -purpose sslclient` at an OpenSSL security level: OK, or the error."""
    crt = folder(lab_dir) / f"{s.name}.crt"
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", crt.read_text(), re.S)
    with tempfile.TemporaryDirectory(prefix=".lab-verify-", dir=lab_dir) as tmp:
        leaf, chain = Path(tmp, "leaf.pem"), Path(tmp, "chain.pem")
        leaf.write_text(pems[0])
        chain.write_text("".join(pems[1:]))
        args = ["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-auth_level", str(level), "-CAfile",
                str(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT)] + (["-untrusted", str(chain)] if pems[1:] else [])
        proc = subprocess.run([*args, str(leaf)], capture_output=True, text=True)
    if proc.returncode == 0:
        return "OK"
    found = re.search(r"error (\d+) at \d+ depth lookup: (.*)", proc.stdout + proc.stderr)
    return f"{found.group(2).strip()} ({found.group(1)})" if found else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _pyca(lab_dir: Path, s: Specimen) -> str:
    """pyca/cryptography's client verifier (its Web PKI-like policy): OK, or why not."""
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    from lab.pki.ca import load_cert

    try:
        chain = x509.load_pem_x509_certificates((folder(lab_dir) / f"{s.name}.crt").read_bytes())
        store = Store([load_cert(layout.certs_dir(lab_dir) / layout.CLIENT_CA_CRT)])
        PolicyBuilder().store(store).time(dt.datetime.now(dt.UTC)).build_client_verifier().verify(chain[0], chain[1:])
        return "OK"
    except (VerificationError, ValueError) as e:
        why = re.sub(r"^validation failed: (candidates exhausted: )?", "", str(e))
        why = re.sub(r" \(encountered processing .*", "", why).strip()
        oid = re.search(r"oid: (\d+(?:\.\d+)+)", why)      # its Rust debug form, as a name
        if oid:
            why = why.split(":")[0] + ": " + _oid_name(oid.group(1))
        return why


def _oid_name(dotted: str) -> str:
    from cryptography import x509

    return getattr(x509.ObjectIdentifier(dotted), "_name", dotted)


def run(lab_dir: Path, settings: Settings, only: list[str] | None = None, host: str | None = None) -> list[Row]:
    """Every specimen (or those named) sent to the mTLS server, and judged by the two local validators."""
    from lab.teach import verify

    chosen = [find(n) for n in only] if only else list(SPECIMENS)

    def one(s: Specimen) -> Row:
        sc = scenario(lab_dir, s.name)
        address, hostname, port = verify.target(sc, settings, host)
        obs = verify.request(address, port, sc, lab_dir, hostname)
        if obs.kind == "http":
            nginx = obs.client_verify or (f"HTTP {obs.status}: {obs.reason}")
        else:
            nginx = f"{obs.kind}: {obs.reason}"
        low = "; ".join(f"level {n}: {_openssl_strict(lab_dir, s, n)}" for n in (1, 0)) if s.name in WEAK else ""
        return Row(s, nginx, obs.status, _openssl_strict(lab_dir, s), _pyca(lab_dir, s), low,
                   verify.curl_command(sc, lab_dir, settings, host))

    return each(one, chosen)


@dataclass(frozen=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    nginx_version: str = ""
    openssl_version: str = ""       # nginx's OpenSSL, as `nginx -V` names it

    @property
    def changed(self) -> list[Row]:
        return [r for r in self.rows if not r.as_documented]

    def to_dict(self) -> dict:
        return {"nginx": self.nginx_version, "openssl": self.openssl_version,
                "rows": [r.to_dict() for r in self.rows], "changed": [r.specimen.name for r in self.changed]}
