"""The address a request came from, for the login lockout (django-axes) and the webhook rate limit.

Without a proxy (``BEHIND_PROXY`` off, ``PROXY_COUNT`` 0) it is the connection's own address,
``REMOTE_ADDR``: ``X-Forwarded-For`` is whatever the client chose to send, so it is ignored (else a
client could dodge a lockout or a limit by writing a new address into it on every request).

Behind ``PROXY_COUNT`` proxies that each append the address they saw to ``X-Forwarded-For`` (nginx's
``$proxy_add_x_forwarded_for``, Caddy, cloud load balancers), the client is the entry that many places
from the right: the one the outermost trusted proxy wrote. Entries further left came from the client
and are not trusted. This is DRF's rule for ``NUM_PROXIES`` (set to the same count), so the lockout and
the throttles see one address.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def client_ip(request) -> str | None:
    """The client's address (``AXES_CLIENT_IP_CALLABLE``); ``REMOTE_ADDR`` unless behind a proxy."""
    meta = getattr(request, "META", {})
    remote_addr = meta.get("REMOTE_ADDR")
    proxies = getattr(settings, "PROXY_COUNT", 0)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote_addr
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote_addr
    candidate = addresses[-min(proxies, len(addresses))]
    # A proxy writes plain addresses; anything else (a name, a port, garbage) is not one of them.
    return candidate if _valid(candidate) else remote_addr
