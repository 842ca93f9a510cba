"""A student's own certificate request (lab client sign): read, and checked for what the lab's servers would
refuse (a weak key, a broken signature hash) and for powers no student gets (CA, server, certificate signing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.core.errors import UsageError


def read(request: Path) -> Any:
    """The request, PEM or DER, whose signature proves the student holds its key; UsageError otherwise."""
    from cryptography import x509

    try:
        raw = request.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {request} ({e.strerror})") from None
    try:
        csr = x509.load_pem_x509_csr(raw) if b"-----BEGIN" in raw else x509.load_der_x509_csr(raw)
    except ValueError:
        raise UsageError(f"{request} is not a certificate request (PEM or DER)",
                         hint="make one: openssl req -new -key NAME.key -subj /CN=NAME -out NAME.csr") from None
    refuse_weak(csr, request)
    if not csr.is_signature_valid:
        raise UsageError(f"{request}: its signature does not verify: it was not made with the key it carries",
                         hint="make the request again with your own key (openssl req -new -key …)")
    return csr


# The lab's minimum, as the servers' OpenSSL (security level 2) enforces it: nginx refuses a client whose key
# is weaker ("EE certificate key too weak"), so such a student would be on the roster and never get in.
MIN_RSA_BITS = 2048
_NEW_KEY = "make a new key and request: openssl req -new -newkey rsa:3072 -nodes -keyout NAME.key -subj /CN=NAME -out NAME.csr"


def refuse_weak(csr: Any, request: Path) -> None:
    """A key or a signature the servers would refuse, named with its real reason."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise UsageError(f"{request} carries an RSA key of {key.key_size} bits: the lab's servers refuse keys under "
                         f"{MIN_RSA_BITS} bits", hint=_NEW_KEY)
    if isinstance(key, dsa.DSAPublicKey):
        raise UsageError(f"{request} carries a DSA key: TLS 1.3 has no DSA, and the lab's servers refuse it",
                         hint=_NEW_KEY)
    algorithm = csr.signature_hash_algorithm
    if isinstance(algorithm, (hashes.SHA1, hashes.MD5)):
        raise UsageError(f"{request} is signed with {algorithm.name.upper()}, which is broken and refused: sign the "
                         "request with SHA-256", hint="openssl req -new -sha256 -key NAME.key -subj /CN=NAME -out NAME.csr")


def refuse_powers(csr: Any, request: Path) -> None:
    """No CA, no server, no certificate signing: whatever a request asks, a student gets a client certificate."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    for ext in csr.extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise UsageError(f"{request} asks to be a CA (basicConstraints CA:TRUE): a student's certificate never is")
        if isinstance(value, x509.ExtendedKeyUsage) and ExtendedKeyUsageOID.SERVER_AUTH in value:
            raise UsageError(f"{request} asks for serverAuth: the client CA issues client certificates only")
        if isinstance(value, x509.KeyUsage) and value.key_cert_sign:
            raise UsageError(f"{request} asks for keyCertSign: a student's certificate signs no certificate")


def asked_name(csr: Any, request: Path) -> str:
    from cryptography.x509.oid import NameOID

    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise UsageError(f"{request} has no common name: give the student's name with --name")
    return str(cns[0].value)
