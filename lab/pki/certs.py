"""Stage 1: the lab's certificates.

Made by scripts/gen-certs.sh (OpenSSL, through subprocess with an argument
list), read back with the `cryptography` library to decide whether an existing
set can be reused: every key must match its certificate, no certificate may be
expired, and the server certificate must cover the requested names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from lab.core import layout
from lab.core.errors import CertificateError
from lab.core.resources import scripts_dir
from lab.core.settings import Settings


@dataclass(frozen=True)
class CertsResult:
    directory: Path
    generated: bool          # False: an existing valid set was reused
    sans: tuple[str, ...]    # what the server certificate covers
    not_after: dt.datetime   # the earliest expiry of the set
    dropped_students: tuple[str, ...] = ()   # their CA was replaced: they need new certificates
    replaced: tuple[str, ...] = ()   # certificates or keys put in by hand (and checked), kept
    server_renewed: bool = False     # a new server CA and certificate for new names; students' stay


def _load_cert(path: Path):
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (ValueError, OSError) as e:
        raise CertificateError(
            f"{path} is not a readable PEM certificate ({e})",
            hint="run `lab up --regenerate` to make a new set",
        ) from None


def _load_key(path: Path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as e:
        raise CertificateError(
            f"{path} is not a readable PEM private key ({e})",
            hint="run `lab up --regenerate` to make a new set",
        ) from None


def _public_bytes(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signed_by(cert, issuer) -> bool:
    """Is `cert` issued by `issuer` (its name, and a signature its key checks)?"""
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def server_sans(cert) -> tuple[str, ...]:
    """The subjectAltNames of a certificate as 'DNS:x' / 'IP:y' strings."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    names += [f"IP:{a}" for a in ext.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def expiries(lab_dir: Path) -> dict[str, dt.datetime]:
    """The expiry of each readable certificate of the lab (for status; never raises).
    Remembered by file digest in the lab directory's cache: a warm `lab up` reads no certificate."""
    from lab.core import cache

    directory = layout.certs_dir(lab_dir)
    known = cache.recall(lab_dir, "expiries", lambda e: dict(e["files"])) or {}
    found, learned = {}, {}
    for name in layout.CERT_FILES:
        if not name.endswith(".crt"):
            continue
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        entry = known.get(name)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == digest:
            with contextlib.suppress(ValueError, TypeError):
                found[name] = dt.datetime.fromisoformat(entry[1])
                learned[name] = entry
                continue
        from cryptography import x509

        try:
            found[name] = x509.load_pem_x509_certificate(data).not_valid_after_utc
        except ValueError:
            continue
        learned[name] = [digest, found[name].isoformat()]
    if learned != known:
        cache.put(lab_dir, "expiries", {"files": learned})
    return found


def check_existing(directory: Path, settings: Settings, now: dt.datetime | None = None,
                   demo: Path | None = None, crl_dir: Path | None = None) -> CertsResult:
    """Raise CertificateError unless the set in `directory` (and the demo
    certificates beside it, in `demo`) can be reused as is."""
    now = now or dt.datetime.now(dt.UTC)
    missing = [name for name in layout.CERT_FILES if not (directory / name).is_file()]
    if missing:
        raise CertificateError(
            f"{directory} is missing {', '.join(missing)}",
            hint="run `lab up --regenerate` to make a new set",
        )
    earliest: dt.datetime | None = None
    for crt_name, key_name in layout.CERT_KEY_PAIRS:
        cert = _load_cert(directory / crt_name)
        key = _load_key(directory / key_name)
        if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
            raise CertificateError(
                f"{directory / key_name} does not match {directory / crt_name}",
                hint="run `lab up --regenerate` to make a new set",
            )
        if cert.not_valid_after_utc <= now:
            raise CertificateError(
                f"{directory / crt_name} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                hint="run `lab up --regenerate` to make a new set",
            )
        if cert.not_valid_before_utc > now:
            raise CertificateError(
                f"{directory / crt_name} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                "(is this machine's clock right?)",
                hint="fix the clock, or run `lab up --regenerate`",
            )
        earliest = min(earliest or cert.not_valid_after_utc, cert.not_valid_after_utc)
    demo = demo or directory.parent / layout.DEMO_DIR
    # The authorization set comes with every new set; a lab made before it gets it from ensure_authz_demo.
    wanted = layout.DEMO_FILES + (layout.AUTHZ_DEMO_FILES if crl_dir is not None else ())
    missing_demo = [name for name in wanted if not (demo / name).is_file()]
    if not (directory / layout.CLIENT_CA_DB / "index.txt").is_file():
        missing_demo.append(str(directory / layout.CLIENT_CA_DB / "index.txt"))
    # The CRL is not needed here: it is made anew from the client CA's database
    # whenever it is missing or unreadable (ca.ensure_fresh_crl); only a
    # set just made must come with one.
    if crl_dir is not None and not (crl_dir / layout.CRL_FILE).is_file():
        missing_demo.append(str(crl_dir / layout.CRL_FILE))
    if missing_demo:
        raise CertificateError(
            f"missing {', '.join(missing_demo)} (demo certificates, the client CA's database or its CRL)",
            hint="run `lab up --regenerate` to make a new set",
        )
    sans = server_sans(_load_cert(directory / layout.SERVER_CRT))
    lacking = [s for s in settings.all_sans() if s not in sans]
    if lacking:
        raise NamesNotCovered(
            f"{directory / layout.SERVER_CRT} does not cover {', '.join(lacking)}",
            hint="lab up renews the server certificate (and its CA) for the new names",
        )
    assert earliest is not None    # CERT_KEY_PAIRS is not empty
    return CertsResult(directory, False, sans, earliest)


def openssl_version() -> str:
    """`openssl version`, or CertificateError saying how to install it (lab up and lab doctor say the same)."""
    if shutil.which("openssl") is None:
        raise CertificateError(
            "openssl is not installed: lab makes its certificates with it",
            hint="install it (Debian/Ubuntu: apt-get install openssl; macOS: brew install openssl)",
        )
    return subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()


def _replace_dir(new: Path, final: Path) -> None:
    """Put `new` at `final`, replacing what was there only once `new` is complete."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def needs_generation(lab_dir: Path, regenerate: bool = False) -> bool:
    directory = layout.certs_dir(lab_dir)
    return regenerate or not directory.exists() or not any(directory.iterdir())


def _gen_certs_command(out: Path, settings: Settings) -> list[str]:
    cmd = ["bash", str(scripts_dir() / "gen-certs.sh"), "--out", str(out), "--lab", settings.name,
           "--subject", layout.subject_base(settings.name), "--days", str(settings.days),
           "--ca-days", str(layout.CA_DAYS), "--server-ca-days", str(settings.days + layout.SERVER_CA_EXTRA_DAYS),
           "--crl-days", str(layout.CRL_DAYS)]
    for san in settings.all_sans():
        cmd += ["--san", san]
    return cmd


def _gen_certs_part(out: Path, settings: Settings, part: str, pairs: list[tuple[str, str]]) -> None:
    """gen-certs.sh for one part of the set (--server-only, --authz-demo) into `out`, each made pair checked."""
    proc = subprocess.run([*_gen_certs_command(out, settings), part], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CertificateError(f"scripts/gen-certs.sh {part} failed (exit {proc.returncode})",
                               details=(proc.stderr or proc.stdout).strip(), hint="the lines above are OpenSSL's own message")
    for crt, key in pairs:
        if _public_bytes(_load_cert(out / crt).public_key()) != _public_bytes(_load_key(out / key).public_key()):
            raise CertificateError(f"gen-certs.sh made a {crt} that does not match its key")


class NamesNotCovered(CertificateError):
    """The server certificate lacks a name the lab now needs (--san, room mode)."""


def renew_server(lab_dir: Path, settings: Settings) -> None:
    """A new server CA (constrained to the new names) and server certificate; the
    client CA, its database and every student's certificate stay. Staged, checked,
    then moved into place; each student's copy of the server CA is updated."""
    certs = layout.certs_dir(lab_dir)
    tmp = staging_dir(lab_dir, "server")
    try:
        _gen_certs_part(tmp, settings, "--server-only",
                        [(layout.SERVER_CA_CRT, layout.SERVER_CA_KEY), (layout.SERVER_CRT, layout.SERVER_KEY)])
        for name in (layout.SERVER_CA_KEY, layout.SERVER_KEY, layout.SERVER_CA_CRT, layout.SERVER_CRT):
            os.replace(tmp / name, certs / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clients = layout.clients_dir(lab_dir)
    for folder in (clients.iterdir() if clients.is_dir() else []):
        if (folder / layout.SERVER_CA_CRT).is_file():
            shutil.copyfile(certs / layout.SERVER_CA_CRT, folder / layout.SERVER_CA_CRT)
    _remember_made(lab_dir)


def ensure_authz_demo(lab_dir: Path, settings: Settings) -> bool:
    """A lab made before the authorization demo set (the instructor, the partner CA, the impostor) gets it:
    made from the lab's client CA in a staging folder, checked, then moved into demo-certs/. True when made."""
    demo = layout.demo_dir(lab_dir)
    if all((demo / name).is_file() for name in layout.AUTHZ_DEMO_FILES):
        return False
    certs = layout.certs_dir(lab_dir)
    tmp = staging_dir(lab_dir, "authz")
    try:
        for name in (layout.CLIENT_CA_CRT, layout.CLIENT_CA_KEY):
            shutil.copyfile(certs / name, tmp / name)
        _gen_certs_part(tmp, settings, "--authz-demo", [(f"demo/{crt}", f"demo/{key}") for crt, key in (
            layout.INSTRUCTOR_CLIENT, layout.IMPOSTOR_CLIENT, (layout.PARTNER_CA_CRT, "partner-ca.key"))])
        demo.mkdir(mode=0o700, exist_ok=True)
        for name in layout.AUTHZ_DEMO_FILES:
            os.replace(tmp / "demo" / name, demo / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def ensure_ocsp_signer(lab_dir: Path, settings: Settings) -> bool:
    """ocsp/: the OCSP responder's key and certificate (OCSP signing, from the client CA) and the client CA's
    certificate. Made when missing, unreadable, not from this client CA or running out; staged, checked, then
    moved into place. True when made."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from lab.core.files import refuse_links

    folder = lab_dir / layout.OCSP_DIR
    refuse_links(lab_dir, folder / layout.OCSP_CRT)    # a link planted at ocsp/: never read or replaced through it
    certs = layout.certs_dir(lab_dir)
    ca_crt = _load_cert(certs / layout.CLIENT_CA_CRT)
    try:
        crt = _load_cert(folder / layout.OCSP_CRT)
        current = (_signed_by(crt, ca_crt)
                   and (folder / layout.CLIENT_CA_CRT).read_bytes() == (certs / layout.CLIENT_CA_CRT).read_bytes()
                   and _public_bytes(crt.public_key()) == _public_bytes(_load_key(folder / layout.OCSP_KEY).public_key())
                   and crt.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=layout.EXPIRY_WARN_DAYS))
    except (OSError, ValueError, CertificateError):
        current = False
    if current:
        return False
    tmp = staging_dir(lab_dir, "ocsp")
    try:
        from lab.pki.ca import run_script

        run_script("ocsp-signer", "--certs", str(certs), "--out", str(tmp), "--lab", settings.name,
                   "--subject", layout.subject_base(settings.name), "--days", str(settings.days))
        made = _load_cert(tmp / layout.OCSP_CRT)
        eku = made.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if (list(eku) != [ExtendedKeyUsageOID.OCSP_SIGNING] or not _signed_by(made, ca_crt)
                or _public_bytes(made.public_key()) != _public_bytes(_load_key(tmp / layout.OCSP_KEY).public_key())):
            raise CertificateError("client-ca.sh made an OCSP responder certificate that is not what lab asked for")
        os.chmod(tmp, 0o700)
        old = lab_dir / f".{layout.OCSP_DIR}.old-{os.getpid()}"
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


STAGING_PREFIX = ".lab-certs-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dir(parent: Path, kind: str) -> Path:
    """A private folder in `parent` to make certificates in (CA keys are copied there) before they move into
    place, named for this process: whatever a killed run leaves, clean_stale_staging finds and removes."""
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-{kind}-", dir=parent))


def clean_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging folders (.lab-certs-PID-…) of runs that no longer exist; returns them."""
    import re

    removed = []
    for path in parent.glob(f"{STAGING_PREFIX}*") if parent.is_dir() else []:
        m = re.fullmatch(rf"{re.escape(STAGING_PREFIX)}(\d+)-.+", path.name)
        if m and path.is_dir() and not path.is_symlink() and not _alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)    # (a script the killed run left may still write: next time)
            if not path.exists():
                removed.append(path)
    return removed


class StagedCertificates:
    """gen-certs.sh running into a staging folder beside the lab directory.

    Nothing in the lab directory changes until finish(): the old set (if any)
    is replaced only once the new one is complete and checked, so an
    interrupted or failed run never leaves a half-written certs/ behind.
    `lab up` starts one before its preflight checks, so that OpenSSL works
    while Python imports the Docker SDK; discard() drops it if they fail.
    """

    def __init__(self, staging_parent: Path, settings: Settings):
        openssl_version()
        # The process is in the name: a run killed outright (SIGKILL) leaves a folder that holds CA keys,
        # and the next `lab up` or `lab down` beside it finds it and removes it (clean_stale_staging).
        self.tmp = staging_dir(staging_parent, "set")
        cmd = _gen_certs_command(self.tmp, settings)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def discard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(self, lab_dir: Path, settings: Settings) -> CertsResult:
        tmp, final = self.tmp, layout.certs_dir(lab_dir)
        try:
            out, err = self.proc.communicate()
            if self.proc.returncode != 0:
                raise CertificateError(
                    f"scripts/gen-certs.sh failed (exit {self.proc.returncode})",
                    details=(err or out).strip(), hint="the lines above are OpenSSL's own message",
                )
            os.chmod(tmp, 0o700)
            result = check_existing(tmp, settings, demo=tmp / "demo", crl_dir=tmp / layout.CRL_DIR)
            # The set is complete: move the demo certificates and the CRL out of
            # it, then everything into place. Students' certificates from an older
            # set were signed by a CA that no longer exists: they go too.
            for sub, target in (("demo", layout.demo_dir(lab_dir)), (layout.CRL_DIR, lab_dir / layout.CRL_DIR)):
                staged = tmp.with_name(f"{tmp.name}-{sub}")
                os.replace(tmp / sub, staged)
                try:
                    _replace_dir(staged, target)
                finally:
                    shutil.rmtree(staged, ignore_errors=True)
            clients = layout.clients_dir(lab_dir)
            dropped = tuple(sorted(p.name for p in clients.iterdir() if p.is_dir())) if clients.is_dir() else ()
            shutil.rmtree(clients, ignore_errors=True)
            # Their .p12 passwords and handouts (zips, the password sheet) went with them: nothing of the old
            # students is left to hand out by mistake.
            for gone in (layout.PASSWORDS_DIR, layout.HANDOUTS_DIR, layout.GALLERY_DIR):   # the gallery: the old CA's
                if not (lab_dir / gone).is_symlink():
                    shutil.rmtree(lab_dir / gone, ignore_errors=True)
            _replace_dir(tmp, final)
            _remember(lab_dir, result)
            _remember_made(lab_dir)
            return CertsResult(final, True, result.sans, result.not_after, dropped)
        except BaseException:
            self.discard()
            raise


def _cert_files(lab_dir: Path) -> list[Path]:
    certs = layout.certs_dir(lab_dir)
    files = [certs / n for n in layout.CERT_FILES] + [layout.demo_dir(lab_dir) / n
                                                      for n in (*layout.DEMO_FILES, *layout.AUTHZ_DEMO_FILES)]
    return files + [layout.crl_file(lab_dir), certs / layout.CLIENT_CA_DB / "ca.cnf"]


def _remember(lab_dir: Path, result: CertsResult) -> None:
    from lab.core import cache

    cache.put(lab_dir, "certs", {"digest": cache.digest(files=_cert_files(lab_dir)), "sans": list(result.sans),
                                 "not_after": result.not_after.isoformat()})


def _recall(lab_dir: Path, settings: Settings) -> CertsResult | None:
    """The result of an earlier check of exactly these files, if still true now."""
    from lab.core import cache

    def still_true(entry) -> CertsResult | None:
        if entry["digest"] != cache.digest(files=_cert_files(lab_dir)):
            return None
        not_after = dt.datetime.fromisoformat(entry["not_after"])
        sans = tuple(str(s) for s in entry["sans"])
        if not_after <= dt.datetime.now(dt.UTC) or any(s not in sans for s in settings.all_sans()):
            return None
        return CertsResult(layout.certs_dir(lab_dir), False, sans, not_after)

    return cache.recall(lab_dir, "certs", still_true)


def _made_digests(lab_dir: Path) -> dict:
    import hashlib

    certs = layout.certs_dir(lab_dir)
    return {f"{layout.CERTS_DIR}/{n}": hashlib.sha256((certs / n).read_bytes()).hexdigest()
            for n in layout.CERT_FILES if (certs / n).is_file()}


def _remember_made(lab_dir: Path) -> None:
    """What gen-certs.sh made, file by file: a file that differs later was put in by hand."""
    from lab.core import cache

    cache.put(lab_dir, "certs-made", {"files": _made_digests(lab_dir)})


def _replaced(lab_dir: Path) -> tuple[str, ...]:
    from lab.core import cache

    made = cache.recall(lab_dir, "certs-made", lambda e: dict(e["files"]))
    if not made:
        return ()
    return tuple(rel for rel, digest in _made_digests(lab_dir).items() if made.get(rel) not in (None, digest))


def ensure(lab_dir: Path, settings: Settings, regenerate: bool = False,
           pending: StagedCertificates | None = None) -> CertsResult:
    """Reuse a valid existing set, make one where there is none; never
    silently replace a set the instructor may have handed out."""
    if needs_generation(lab_dir, regenerate):
        return (pending or StagedCertificates(lab_dir, settings)).finish(lab_dir, settings)
    if pending is not None:
        pending.discard()
    recalled = _recall(lab_dir, settings)
    if recalled is not None:
        return replace(recalled, replaced=_replaced(lab_dir))
    # Every pair checked (a key put in by hand must match its certificate), then kept as it is.
    renewed = False
    ensure_authz_demo(lab_dir, settings)
    try:
        result = check_existing(layout.certs_dir(lab_dir), settings)
    except NamesNotCovered:
        # New names for the server (--san, room mode): a new server CA and certificate; students keep theirs.
        renew_server(lab_dir, settings)
        result, renewed = check_existing(layout.certs_dir(lab_dir), settings), True
    _remember(lab_dir, result)
    return replace(result, replaced=_replaced(lab_dir), server_renewed=renewed)
