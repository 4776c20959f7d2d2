"""Requests to addresses that users typed (workflow webhooks): public servers only.

A marketer can enter any URL; without a check, Patron's own network (the
database, a cloud provider's metadata service at 169.254.169.254, an admin
panel on localhost) would be one webhook away. Before a request is sent, every
address the host name resolves to must be a global one, and redirects are not
followed (a public server could otherwise send the request on to a private
one). ``PATRON_WEBHOOK_ALLOW_PRIVATE=1`` lifts the address rule for
installations whose receivers live on their own network.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings


class OutboundRefused(ValueError):
    """The address may not be called; the message says why."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirects)


def check_public_address(url: str) -> None:
    """Raise ``OutboundRefused`` unless every address of the URL's host is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"Only http and https addresses can be called, not {url!r}.")
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundRefused(f"The host {parts.hostname} could not be found ({exc}).") from exc
    for _family, _type, _proto, _name, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            raise OutboundRefused(
                f"{parts.hostname} resolves to {ip}, a private or reserved address: "
                "only servers on the internet can be called."
            )


def names_private_host(url: str) -> bool:
    """Whether the URL names a local host outright ("localhost", a private IP literal).

    The check a form can make without the network; ``check_public_address``
    at call time also covers names that resolve to private addresses.
    """
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return False
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def open_public_url(request: urllib.request.Request, *, timeout: float) -> Any:
    """``urlopen`` for a user-given address: checked first, redirects not followed."""
    check_public_address(request.full_url)
    return _OPENER.open(request, timeout=timeout)
