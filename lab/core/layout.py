"""Fixed names of the lab: files, folders, ports, labels. Each lives here once.

The lab directory mirrors the layout of the classic "mTLS hello world"
article, so an instructor can zip it and hand it out::

    mtls-lab/
      lab.yml                 settings saved by `lab up`
      docker-compose.yml      works on its own with `docker compose up`
      certs/                  server-ca, client-ca, server, client (.key/.crt)
      demo-certs/             made to be refused: rogue CA, expired, wrong purpose
      crl/client-ca.crl       the client CA's revocation list (mounted for nginx's ssl_crl)
      clients/NAME/           one student's certificate, key, PKCS#12 bundle, README
      nginx-tls/nginx.conf    plain TLS server (port 8888)
      nginx-tls/hello-world.txt
      nginx-mtls/nginx.conf   mutual TLS server (port 8889)
      nginx-mtls/hello-world.txt
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

DEFAULT_NAME = "mtls-lab"
# A pinned official tag: the lesson must not change under the instructor's feet
# when "latest" moves. Rooms with no registry build one from Debian packages
# (scripts/build-nginx-image.sh) and pass --image / LAB_IMAGE.
DEFAULT_IMAGE = "nginx:1.27.3"
OFFLINE_IMAGE = "lab-nginx:bookworm"
DEFAULT_TLS_PORT = 8888
DEFAULT_MTLS_PORT = 8889
DEFAULT_BIND = "127.0.0.1"
# Leaf certificates: one year by default; never more than 825 days, the
# longest lifetime Apple platforms accept for TLS server certificates
# (https://support.apple.com/en-us/103769).
DEFAULT_DAYS = 365
# How the mTLS server learns a student was revoked: the CRL (read when nginx loads its configuration), an
# OCSP responder asked at every full handshake (a third container, NAME-ocsp), or both.
REVOCATION_MODES = ("crl", "ocsp", "both")
DEFAULT_REVOCATION = "crl"
# The OCSP responder (openssl ocsp over the client CA's database, mounted read-only): its own key and
# certificate (OCSP signing only, from the client CA) in ocsp/, never the CA's key; reached by the mTLS
# server on the lab network only, at http://NAME-ocsp:2560.
OCSP_DIR = "ocsp"
# lab gallery's bad client certificates (lab/teach/gallery.py makes them; lab certs lists them).
GALLERY_DIR = "gallery-certs"
OCSP_CRT = "ocsp.crt"
OCSP_KEY = "ocsp.key"
OCSP_PORT = 2560
OCSP_INDEX = "index.txt"          # derived from the client CA's database (lab/pki/ca.py), with lab's own certificates
OCSP_CA_FILE = "client-ca.crt"
CONTAINER_OCSP_DIR = "/etc/lab-ocsp"
MAX_DAYS = 825
# The server certificate always covers the names a student types on the
# instructor's machine; --san adds more (e.g. the room's host name).
BASE_SANS = ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
# The client CA: ten years, so a lab directory handed out keeps working. The
# server CA lives as long as the lab's certificates (a day more than its
# leaves), and is name-constrained to the lab's server names: a student who
# trusts it in a browser trusts nothing else, and not for long.
CA_DAYS = 3650
SERVER_CA_EXTRA_DAYS = 1
# Every certificate's subject: /O=mtls-lab/OU=<lab name>/CN=<who>.
SUBJECT_ORG = "mtls-lab"


def subject_base(lab: str) -> str:
    """The subject every certificate of this lab starts with (openssl -subj form); the scripts add /CN=."""
    return f"/O={SUBJECT_ORG}/OU={lab}"


SETTINGS_FILE = "lab.yml"
COMPOSE_FILE = "docker-compose.yml"
CERTS_DIR = "certs"
HELLO_FILE = "hello-world.txt"
# The mTLS server's /help, for curl and for browsers (templates/student-help.j2).
HELP_TXT = "help.txt"
HELP_HTML = "help.html"

SERVER_CA_KEY = "server-ca.key"
SERVER_CA_CRT = "server-ca.crt"
CLIENT_CA_KEY = "client-ca.key"
CLIENT_CA_CRT = "client-ca.crt"
SERVER_KEY = "server.key"
SERVER_CRT = "server.crt"
CLIENT_KEY = "client.key"
CLIENT_CRT = "client.crt"
CERT_FILES = (
    SERVER_CA_KEY, SERVER_CA_CRT, CLIENT_CA_KEY, CLIENT_CA_CRT,
    SERVER_KEY, SERVER_CRT, CLIENT_KEY, CLIENT_CRT,
)
# Certificates made only to be refused, for `lab verify`; kept apart from the
# real set, in their own folder, so no one mistakes them for it.
DEMO_DIR = "demo-certs"
ROGUE_CA_CRT = "rogue-ca.crt"
ROGUE_CLIENT = ("rogue-client.crt", "rogue-client.key")
EXPIRED_CLIENT = ("expired-client.crt", "expired-client.key")
WRONG_PURPOSE_CLIENT = ("wrong-purpose.crt", "wrong-purpose.key")
DEMO_FILES = (ROGUE_CA_CRT, "rogue-ca.key", *ROGUE_CLIENT, *EXPIRED_CLIENT, *WRONG_PURPOSE_CLIENT)
# For authorization: the lab's own instructor (client CA, the instructor role), a partner school's CA the mTLS
# server also trusts (and its CRL: nginx wants one for every CA it trusts), and an impostor from it with the
# instructor's very subject, serial and SPIFFE ID. A lab made before them gets them on its next `lab up`.
INSTRUCTOR_CLIENT = ("instructor.crt", "instructor.key")
IMPOSTOR_CLIENT = ("impostor.crt", "impostor.key")
PARTNER_CA_CRT = "partner-ca.crt"
PARTNER_CA_CRL = "partner-ca.crl"
AUTHZ_DEMO_FILES = (*INSTRUCTOR_CLIENT, PARTNER_CA_CRT, "partner-ca.key", PARTNER_CA_CRL, *IMPOSTOR_CLIENT)

# The client CA's database (openssl ca), for issuing and revoking students'
# certificates, and its revocation list. The CRL lives in its own folder because
# that folder (not the file) is mounted into the mTLS container: a replaced file
# inside a mounted folder is seen at once, a replaced mounted file is not.
CLIENT_CA_DB = "client-ca-db"
CRL_DIR = "crl"
CRL_FILE = "client-ca.crl"
# Beside it, each student's display name by certificate serial, for the mTLS server's pages: nginx writes a
# name's bytes past ASCII as \C3\A9 in $ssl_client_s_dn, so the page looks the name up by $ssl_client_serial.
NAMES_FILE = "students.map"
CONTAINER_CRL_DIR = "/etc/nginx/crl"
# Renew the CRL on `lab up` when it has fewer days than this left.
CRL_DAYS = 90
CRL_RENEW_DAYS = 30
# Status, certs and doctor warn when a certificate has fewer days than this left.
EXPIRY_WARN_DAYS = 30
# One folder per student: clients/NAME/NAME.crt, .key, .p12, README.txt, the CAs.
CLIENTS_DIR = "clients"
# The .p12 passwords, for the instructor only: never in a student's folder (it
# holds the unencrypted key too, so a password beside it would protect nothing).
HANDOUTS_DIR = "handouts"      # lab handout's folder, unless --out names another
PASSWORDS_DIR = "passwords"


#: A student's own files in their folder: clients/NAME/NAME.crt, .key, .p12 (and a signed request's .csr).
StudentFile = Literal["crt", "key", "p12", "csr"]


def student_file(name: str, kind: StudentFile) -> str:
    """The one naming rule for a student's files: NAME.crt, NAME.key, NAME.p12, NAME.csr."""
    return f"{name}.{kind}"


def password_file(lab_dir: Path, student: str) -> Path:
    return lab_dir / PASSWORDS_DIR / f"{student}.p12.password"

# (certificate, key) pairs checked before reuse.
CERT_KEY_PAIRS = (
    (SERVER_CA_CRT, SERVER_CA_KEY),
    (CLIENT_CA_CRT, CLIENT_CA_KEY),
    (SERVER_CRT, SERVER_KEY),
    (CLIENT_CRT, CLIENT_KEY),
)

# Inside the containers (the article's paths).
CONTAINER_CERT_DIR = "/etc/nginx/certificates"
# Each server's folder of the lab directory (nginx.conf, hello-world.txt) is
# mounted whole here, and nginx runs with -c on the nginx.conf in it.
CONTAINER_CONF_DIR = "/etc/nginx/lab"
NGINX_CONF = "nginx.conf"

# The two servers: key -> (folder in the lab directory, port inside the container).
#: The lab's two servers.
Server = Literal["tls", "mtls"]
SERVERS: dict[Server, tuple[str, int]] = {   # folder in the lab directory, default port
    "tls": ("nginx-tls", DEFAULT_TLS_PORT),
    "mtls": ("nginx-mtls", DEFAULT_MTLS_PORT),
}

# lab's own requests (verify, --as, revocation proofs, handshakes) say so in their User-Agent, so that
# `lab room` leaves them out: an instructor's `lab verify --as alice` is not alice connecting.
OWN_AGENT = "mtls-lab"

# Labels on everything lab creates; `lab down` and `lab status` filter on them
# and never touch anything without them.
LABEL_LAB = "io.mtls-lab.lab"
LABEL_SERVER = "io.mtls-lab.server"
LABEL_CONFIG_HASH = "io.mtls-lab.config-hash"
# The lab directory a lab's containers were made from: two lab directories
# using the same name would otherwise fight over one set of containers.
LABEL_DIR = "io.mtls-lab.dir"


#: A container of a lab: one of its two servers, or the OCSP responder (lab up --revocation ocsp|both).
Service = Literal["tls", "mtls", "ocsp"]


def container_name(lab: str, server: Service) -> str:
    return f"{lab}-{server}"


def network_name(lab: str) -> str:
    return f"{lab}-net"


def certs_dir(lab_dir: Path) -> Path:
    return lab_dir / CERTS_DIR


def demo_dir(lab_dir: Path) -> Path:
    return lab_dir / DEMO_DIR


def crl_file(lab_dir: Path) -> Path:
    return lab_dir / CRL_DIR / CRL_FILE


def names_file(lab_dir: Path) -> Path:
    return lab_dir / CRL_DIR / NAMES_FILE


def clients_dir(lab_dir: Path) -> Path:
    return lab_dir / CLIENTS_DIR


def server_named(text: str) -> Server:
    """A server named on the command line: tls or mtls, else a UsageError."""
    from lab.core.errors import UsageError

    for server in SERVERS:
        if text == server:
            return server
    raise UsageError(f"unknown server {text!r}: use tls or mtls (or nothing for both)")


def servers_named(text: str | None) -> list[Server]:
    """One server, or both when none is named."""
    return list(SERVERS) if text is None else [server_named(text)]


def lab_paths(text: str, server: Server | None = None) -> str:
    """Container paths in nginx's words written as the lab directory names them
    (/etc/nginx/lab/ is the server's own folder: nginx-mtls/, or nginx-…/ when the server is not known)."""
    folder = SERVERS[server][0] if server else "nginx-…"
    for inside, outside in ((CONTAINER_CONF_DIR, folder), (CONTAINER_CERT_DIR, CERTS_DIR), (CONTAINER_CRL_DIR, CRL_DIR)):
        text = text.replace(inside + "/", outside + "/")
    return text
