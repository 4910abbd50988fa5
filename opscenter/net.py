"""Client addresses that honour only the reverse proxies we were told to trust."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_ip_from(remote_addr: str, forwarded_for: str | None) -> str:
    """Return the client address given the socket peer and an X-Forwarded-For header.

    The header is read only when the peer is a trusted proxy, right to left, skipping
    further trusted proxies: the first untrusted hop is the client. Entries left of it
    were written by the client and prove nothing.
    """
    if not forwarded_for or not _is_trusted_proxy(remote_addr):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted_proxy(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr
    return hops[0] if hops else remote_addr


def client_ip(request: HttpRequest) -> str:
    """Return the request's client address (used by the lockout, throttles and audit)."""
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


class OutboundRefused(ValueError):
    """An outbound request to a host we must not call (a private or local address)."""


def check_outbound_url(url: str) -> None:
    """Refuse URLs whose host is, or resolves to, a private, loopback or link-local address.

    A webhook target is typed in by a user; without this, OpsCenter could be made to call
    services on its own network (SSRF). Hosts in OUTBOUND_ALLOWED_HOSTS, or every host when
    OUTBOUND_ALLOW_PRIVATE is on, are let through.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise OutboundRefused(f"{url!r} is not an http(s) URL.")
    host = parts.hostname
    if settings.OUTBOUND_ALLOW_PRIVATE or host in settings.OUTBOUND_ALLOWED_HOSTS:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise OutboundRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise OutboundRefused(
                f"{host} resolves to the non-public address {ip}; add it to OUTBOUND_ALLOWED_HOSTS to allow it."
            )
