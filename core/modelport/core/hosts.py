"""``Host`` header values, as the control API's trusted-hosts check and the metrics servers read
them (DNS rebinding: a page that rebinds its own name to one of our addresses still sends that
name)."""

from __future__ import annotations

import ipaddress


def split_host(value: str) -> tuple[str, str | None]:
    """``(name, port)`` of a ``Host`` value, lower case, without a trailing dot; IPv6 stays in
    brackets (``[::1]:8000``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], rest[1:] if rest.startswith(":") else None
    name, sep, port = value.rpartition(":")
    if not sep or ":" in name:
        return value.rstrip("."), None
    return name.rstrip("."), port


def addressed_by_ip(value: str) -> bool:
    """Whether a ``Host`` value names an IP address or ``localhost`` (with any port): how
    scrapers and probes address a pod, and never what a rebinding page sends."""
    name, _port = split_host(value)
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True
