"""A student's key, request and PKCS#12 bundle, made in-process with `cryptography`.

A class of two hundred is issued in one `openssl ca` run (scripts/client-ca.sh
issue-many), which keeps the CA database the one authority for serials and
revocation; what OpenSSL would have done once per student besides (a key, a
request, a bundle: three processes each) is done here, in the same forms:
an EC P-256 key in PKCS#8, a request with the student's subject and SPIFFE ID,
and a bundle as `openssl pkcs12 -export` makes it (PBES2 AES-256-CBC with a
SHA-256 MAC, 2048 iterations; or, for older macOS and iOS, the legacy 3DES
with a SHA-1 MAC).
"""

from __future__ import annotations

import secrets
import threading
import warnings
from typing import Any

from lab.core import layout


def new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: Any) -> bytes:
    """The key as `openssl genpkey` writes it: PKCS#8, PEM, unencrypted (the folder is private)."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def spiffe_id(lab: str, role: str, login: str) -> str:
    """The student's identity beyond the CN, the form service meshes use: spiffe://LAB/ROLE/LOGIN."""
    return f"spiffe://{lab}/{role or 'student'}/{login}"


def request(key: Any, lab: str, login: str, display: str, role: str) -> bytes:
    """The request lab makes for a student (PEM): the subject every student certificate has (the lab's O and OU,
    a second OU for a role other than student, the login as UID, the display name as CN, all UTF8String) and the
    SPIFFE ID as the one URI SAN, which the batch run's configuration alone copies into the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, layout.SUBJECT_ORG),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, lab)]
    if role and role != "student":
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attrs += [x509.NameAttribute(NameOID.USER_ID, login), _common_name(display)]
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(lab, role, login))])
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
           .add_extension(san, critical=False).sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


_QUIET = threading.Lock()     # catch_warnings swaps the process's filters: one thread at a time


def _common_name(display: str) -> Any:
    """The CN. Its bound is 64 characters (X.520's ub-common-name; OpenSSL counts characters too, and
    lab/pki/names.py checks it); cryptography counts UTF-8 bytes, which would refuse a 33-letter Cyrillic name,
    so its check is turned into a warning, and that warning silenced here."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    with _QUIET, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Attribute's length must be")
        return x509.NameAttribute(NameOID.COMMON_NAME, display, _validate=False)


def new_password() -> str:
    """A random password for the bundle (browsers and OS key stores refuse an empty one); hex, no newline."""
    return secrets.token_hex(12)


# openssl pkcs12 -export's iteration count (PKCS12_DEFAULT_ITER): the password is 96 random bits, so more
# iterations would cost every import of the bundle and protect nothing more.
_ITERATIONS = 2048


def p12(key: Any, cert: Any, friendly_name: str, password: str, legacy: bool = False) -> bytes:
    """The bundle: the certificate and key alone (importing it adds nothing the clean-up would miss)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

    pbes = pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC if legacy else pkcs12.PBES.PBESv2SHA256AndAES256CBC
    encryption = (PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_ITERATIONS).key_cert_algorithm(pbes)
                  .hmac_hash(hashes.SHA1() if legacy else hashes.SHA256()).build(password.encode()))
    return pkcs12.serialize_key_and_certificates(friendly_name.encode(), key, cert, None, encryption)
