"""The lab's settings: validated once, saved in the lab directory.

Precedence: command-line flag, then LAB_* environment variable (typer reads
both), then the lab directory's saved lab.yml, then the defaults. Everything
that reaches a template, a subprocess or Docker passes through `validate`, so
no input can escape into nginx or YAML syntax.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from lab.core import layout
from lab.core.errors import UsageError
from lab.core.net import bracketed, connect_host, is_address

# A lab name becomes a container name, a network name, a label value and part
# of a certificate subject: lower case, digits and dashes only.
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# A DNS name for the server certificate (RFC 1123 labels; a leading "*." for a
# wildcard).
_DNS_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_RE = re.compile(rf"^(?:\*\.)?{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?$")
# An image reference, after the grammar of distribution/reference:
# [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?:(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


@dataclass(frozen=True)
class Settings:
    name: str = layout.DEFAULT_NAME
    tls_port: int = layout.DEFAULT_TLS_PORT
    mtls_port: int = layout.DEFAULT_MTLS_PORT
    bind: str = layout.DEFAULT_BIND
    image: str = layout.DEFAULT_IMAGE
    days: int = layout.DEFAULT_DAYS
    sans: tuple[str, ...] = field(default_factory=tuple)
    # Names or addresses the instructor knows students reach this machine by (the room's DNS name, a
    # projector-friendly address): first in the certificate's extra names and in every student URL.
    public_names: tuple[str, ...] = field(default_factory=tuple)
    revocation: str = layout.DEFAULT_REVOCATION      # crl, ocsp or both (layout.REVOCATION_MODES)

    @property
    def ocsp(self) -> bool:
        """The lab runs an OCSP responder and the mTLS server asks it."""
        return self.revocation in ("ocsp", "both")

    def ports(self) -> dict[str, int]:
        return {"tls": self.tls_port, "mtls": self.mtls_port}

    def all_sans(self) -> tuple[str, ...]:
        extra = tuple(dict.fromkeys(self.public_names + self.sans))
        return layout.BASE_SANS + tuple(s for s in extra if s not in layout.BASE_SANS)

    def connect_address(self) -> str:
        """Where a client on this machine reaches the published ports."""
        return connect_host(self.bind)

    def student_urls(self, path: str = "/hello-world.txt") -> list[str]:
        """The URLs students on the room's network use (empty on loopback): this machine's addresses
        first (they need no name service), then the names that lead to this machine from the network. A
        name that resolves only to loopback here (a host name in /etc/hosts as 127.0.1.1) or not at all
        is in the certificate, but no student is sent to it: `unreachable_names` lists them."""
        if not is_room(self.bind):
            return []
        public = [x.split(":", 1)[1] for x in self.public_names]
        extra = [x.split(":", 1)[1] for x in self.sans if x not in layout.BASE_SANS and x not in self.public_names]
        hosts = public + [h for h in extra if is_address(h)] + [h for h in extra if not is_address(h) and _leads_here(h)]
        return [f"https://{bracketed(h)}:{self.mtls_port}{path}" for h in dict.fromkeys(hosts)]

    def unreachable_names(self) -> list[str]:
        """The certificate's extra DNS names that do not lead to this machine from the network."""
        extra = [x.split(":", 1)[1] for x in self.sans
                 if x.startswith("DNS:") and x not in layout.BASE_SANS and x not in self.public_names]
        return [h for h in extra if not h.startswith("*.") and not _leads_here(h)] if is_room(self.bind) else []

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sans"] = list(self.sans)
        d["public_names"] = list(self.public_names)
        if not self.public_names:
            del d["public_names"]      # lab.yml as labs of before wrote it
        if self.revocation == layout.DEFAULT_REVOCATION:
            del d["revocation"]
        return d


def is_room(bind: str) -> bool:
    """Published beyond this machine (0.0.0.0, ::, or a non-loopback address): the room's network reaches it."""
    return not ipaddress.ip_address(bind).is_loopback


_VIRTUAL = ("docker", "br-", "veth", "virbr", "cni", "flannel", "podman", "lxc")



def _leads_here(name: str) -> bool:
    """Does `name` resolve to an address that is not loopback (where a student's request can arrive)?"""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False
    return any(not ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in found)


def _host_addresses(version: int | None) -> list[str]:
    """This machine's global addresses (iproute2's JSON; else what its name resolves to)."""
    import json
    import shutil
    import subprocess

    found: list[str] = []
    if shutil.which("ip"):
        proc = subprocess.run(["ip", "-j", "address"], capture_output=True, text=True)
        try:
            for link in json.loads(proc.stdout or "[]"):
                if str(link.get("ifname", "")).startswith(_VIRTUAL):
                    continue      # container bridges: no student reaches this machine through them
                found += [a["local"] for a in link.get("addr_info", []) if a.get("scope") == "global"]
        except (ValueError, KeyError, TypeError):
            found = []
    if not found:
        try:
            found = [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            found = []
    out = []
    for a in found:
        addr = ipaddress.ip_address(a.split("%")[0])
        if not (addr.is_loopback or addr.is_link_local) and (version is None or addr.version == version):
            out.append(str(addr))
    return out


def room_names(bind: str) -> tuple[str, ...]:
    """What students on the room's network type to reach this machine: its name, its FQDN and its
    addresses (the bind address itself when it is one). Empty for a lab on loopback."""
    if not is_room(bind):
        return ()
    addr = ipaddress.ip_address(bind)
    names = [socket.gethostname(), socket.getfqdn()]
    addresses = _host_addresses(4 if bind == "0.0.0.0" else None) if addr.is_unspecified else [bind]
    out = []
    for name in names + addresses:
        try:
            san = validate_san(name)
        except UsageError:
            continue    # a host name that is not a valid DNS name (an underscore): students use its address
        if san not in layout.BASE_SANS:
            out.append(san)
    return tuple(dict.fromkeys(out))



def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name or ""):
        raise UsageError(
            f"invalid lab name {name!r}: use 1 to 32 lower-case letters, digits and dashes "
            "(it names containers, a network and certificate subjects)"
        )
    return name


def validate_port(port: int, what: str) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UsageError(f"invalid {what} {port!r}: a port is a whole number from 1 to 65535")
    if port < 1024 and os.geteuid() != 0:
        raise UsageError(f"{what} {port} is a privileged port and lab is not running as root: choose 1024 or above")
    return port


def validate_bind(bind: str) -> str:
    """A literal IP address of this host (or 0.0.0.0 / ::). Checked locally by
    binding a socket to it: nothing is sent anywhere."""
    try:
        addr = ipaddress.ip_address(bind)
    except ValueError:
        raise UsageError(f"invalid bind address {bind!r}: give an IP address such as 127.0.0.1 or 0.0.0.0") from None
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((str(addr), 0))
    except OSError:
        raise UsageError(
            f"bind address {bind} is not an address of this machine: "
            "use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of `ip -brief address`"
        ) from None
    return str(addr)


def validate_san(value: str, option: str = "--san") -> str:
    """Normalise a subjectAltName to 'DNS:name' or 'IP:address'. What looks like an address must be one
    (999.1.1.1 is no name); a zone id (fe80::1%eth0) has no place in a certificate; a public suffix (com,
    co.uk, github.io) is refused: the server CA is constrained to the names given, and a student who
    trusts a CA allowed `com` trusts it for every .com site."""
    raw = value
    kind, _, rest = raw.partition(":")
    explicit = kind.upper() if kind.upper() in ("DNS", "IP") and rest else ""
    if explicit:
        raw = rest
    hint = "give a DNS name (room-pc.local) or an IP address (192.0.2.10)"
    if "%" in raw:
        raise UsageError(f"invalid {option} {value!r}: a zone id (%…) is local to one machine and cannot be in a "
                         "certificate", hint="give the address without it, or a DNS name")
    try:
        return f"IP:{ipaddress.ip_address(raw)}"
    except ValueError:
        if explicit == "IP" or ":" in raw or re.fullmatch(r"[\d.]+", raw):
            raise UsageError(f"invalid {option} {value!r}: not an IP address (IPv4 is four numbers 0 to 255; "
                             "IPv6 as in fd00::10)", hint=hint) from None
    if not (_DNS_RE.fullmatch(raw) and len(raw) <= 253):
        raise UsageError(f"invalid {option} {value!r}: {hint}")
    name = raw.lower().rstrip(".")
    if _public_suffix(name.removeprefix("*.")):
        raise UsageError(f"invalid {option} {value!r}: {name.removeprefix('*.')} is a public suffix: the server CA "
                         "would vouch for every name under it, for anyone who trusts it",
                         hint="give a name of this machine (room-pc.local, lab.example.org)")
    return f"DNS:{name}"


def _public_suffix(name: str) -> bool:
    """A suffix under which anyone registers names (the Public Suffix List, as the publicsuffixlist package
    ships it; a single label it does not know, such as a machine's own name, is not one)."""
    return bool(_psl().is_public(name))


@functools.cache
def _psl() -> Any:
    """The list, read once per process."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=False)


def validate_days(days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= layout.MAX_DAYS:
        raise UsageError(f"invalid --days {days!r}: certificates last 1 to {layout.MAX_DAYS} days")
    return days


_TTL_RE = re.compile(r"^(\d{1,6})([mhd])$")
_TTL_UNIT = {"m": 60, "h": 3600, "d": 86400}


def validate_ttl(text: str) -> int:
    """lab client add --ttl: a short-lived certificate's lifetime (10m, 8h, 2d), in seconds; minutes to days."""
    found = _TTL_RE.match(text.strip())
    seconds = int(found.group(1)) * _TTL_UNIT[found.group(2)] if found else 0
    if not found or not 60 <= seconds <= layout.MAX_DAYS * 86400:
        raise UsageError(f"--ttl {text!r}: a lifetime is a number and m, h or d (10m, 8h, 2d), from 1m to "
                         f"{layout.MAX_DAYS}d")
    return seconds


def validate_revocation(mode: str) -> str:
    if mode not in layout.REVOCATION_MODES:
        raise UsageError(f"invalid --revocation {mode!r}: one of {', '.join(layout.REVOCATION_MODES)}")
    return mode


def validate_image(image: str) -> str:
    if not _IMAGE_RE.fullmatch(image or "") or len(image) > 255:
        raise UsageError(f"invalid image reference {image!r}: expected e.g. nginx:1.27.3 or registry:5000/team/nginx:tag")
    return image


def validate(s: Settings) -> Settings:
    validate_name(s.name)
    validate_port(s.tls_port, "--tls-port")
    validate_port(s.mtls_port, "--mtls-port")
    if s.tls_port == s.mtls_port:
        raise UsageError(f"--tls-port and --mtls-port are both {s.tls_port}: the two servers need two ports")
    bind = validate_bind(s.bind)
    validate_image(s.image)
    validate_revocation(s.revocation)
    validate_days(s.days)
    sans = tuple(dict.fromkeys(validate_san(x) for x in s.sans))
    public = tuple(dict.fromkeys(validate_san(x, "--public-name") for x in s.public_names))
    return Settings(s.name, s.tls_port, s.mtls_port, bind, s.image, s.days, sans, public, s.revocation)


def parse_yaml(text: str):
    """yaml.safe_load, by libyaml when PyYAML has it (several times faster; the same safe subset)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_saved(lab_dir: Path) -> dict:
    """The settings saved by a previous `lab up`, or {} when there are none."""
    path = lab_dir / layout.SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = parse_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not valid YAML ({e.__class__.__name__}): fix it or delete it to use the defaults") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of settings: fix it or delete it to use the defaults")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{path} has unknown settings {', '.join(map(str, unknown))}: known are {', '.join(sorted(known))}")
    hint = "fix it, or delete the line to use the default"
    for key, value in data.items():
        if key in ("sans", "public_names"):
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise UsageError(f"{path}: {key} must be a list of names", hint=hint)
            data[key] = tuple(value)
            continue
        want = _TYPES[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise UsageError(f"{path}: {key} must be {'a whole number' if want is int else 'text'}, "
                             f"not {value!r}", hint=hint)
        try:
            _CHECKS[key](value)
        except UsageError as e:
            raise UsageError(f"{path}: {key}: {e}", hint=hint) from None
    return data


_TYPES = {"name": str, "tls_port": int, "mtls_port": int, "bind": str, "image": str, "days": int, "revocation": str}
_CHECKS: dict[str, Callable[[Any], object]] = {
    "name": validate_name, "bind": validate_bind, "image": validate_image, "days": validate_days,
    "revocation": validate_revocation,
    "tls_port": lambda v: validate_port(v, "tls_port"), "mtls_port": lambda v: validate_port(v, "mtls_port"),
}


def resolve(lab_dir: Path, given: dict[str, Any], port_offset: int | None = None, publishing: bool = False) -> Settings:
    """The one place settings are decided: flags and LAB_* variables (`given`,
    None where not given; typer reads both), then the lab directory's lab.yml,
    then the defaults. --port-offset moves both default ports. `publishing`
    (lab up, lab render): in room mode, this machine's names and addresses are
    looked up (`ip -j address`) and added to the certificate's; a command that
    only reads a lab uses the names lab.yml saved."""
    merged = dict(load_saved(lab_dir)) if lab_dir.is_dir() else {}
    if port_offset is not None:
        if not 0 <= port_offset <= 65535 - layout.DEFAULT_MTLS_PORT:
            raise UsageError(f"invalid --port-offset {port_offset}: from 0 to {65535 - layout.DEFAULT_MTLS_PORT}")
        merged["tls_port"] = layout.DEFAULT_TLS_PORT + port_offset
        merged["mtls_port"] = layout.DEFAULT_MTLS_PORT + port_offset
    merged.update({k: v for k, v in given.items() if v is not None})
    s = validate(Settings(**merged))
    if not publishing:
        return s
    # Room mode: the server certificate also names this machine as students reach it.
    extra = tuple(n for n in room_names(s.bind) if n not in s.sans)
    return Settings(**{**s.__dict__, "sans": s.sans + extra}) if extra else s


def save(lab_dir: Path, s: Settings) -> Path:
    path = lab_dir / layout.SETTINGS_FILE
    text = "# Saved by `lab up`; flags and LAB_* variables override these.\n" + yaml.safe_dump(
        s.to_dict(), sort_keys=False
    )
    from lab.core.files import write_atomically

    return write_atomically(path, text)
