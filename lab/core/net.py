"""Addresses as lab writes and uses them: one rule each."""

from __future__ import annotations


def bracketed(host: str) -> str:
    """An IPv6 address in brackets, as URLs and host:port pairs write it (RFC 3986); anything else as it is."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_port(host: str, port: int | str) -> str:
    """host:port, with an IPv6 address in brackets ([::1]:8889)."""
    return f"{bracketed(host)}:{port}"


def connect_host(bind: str) -> str:
    """The address a client on this machine uses for ports published on `bind`."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)


def is_address(host: str) -> bool:
    """An IP address (v4 or v6, without brackets), not a name."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
