"""Which addresses the connector may send a Pipedrive token to (links to Pipedrive: mapping.rules).

An api_domain comes from a form or from a token answer and is stored on the connection; every call
then carries the company's token to it. Accepting any URL would let whoever can fill the form make
the server call internal addresses (and tell open from closed ports by the error text). So only
``https://<company>.pipedrive.com`` is accepted, plus the sandbox's own address while the sandbox is
switched on; every other address is refused before any request is made.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from connector.errors import ConnectorError
from mapping.rules import is_pipedrive_company_label

# One text for a refused address and for an address that did not answer as Pipedrive does, so the
# page tells nothing about what listens where.
UNREACHABLE = (
    "Pipedrive did not answer at that address. Use your company's Pipedrive address, "
    "https://yourcompany.pipedrive.com, and try again."
)


class RefusedHost(ConnectorError):
    """The address is not Pipedrive's (nor the switched-on sandbox's): nothing is sent to it."""

    def __init__(self):
        super().__init__(UNREACHABLE)


def _sandbox_base() -> str:
    return settings.PIPEDRIVE_API_URL.rstrip("/") if settings.SANDBOX_ENABLED else ""


def pipedrive_base(value: str) -> str:
    """The API base for ``value`` (``https://<company>.pipedrive.com``, normalised), or RefusedHost."""
    text = (value or "").strip().rstrip("/")
    sandbox = _sandbox_base()
    if sandbox and text == sandbox:
        return sandbox
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RefusedHost() from exc
    host = (parts.hostname or "").lower()
    company, _, domain = host.partition(".")
    if (
        parts.scheme.lower() != "https"
        or domain != "pipedrive.com"
        or not is_pipedrive_company_label(company)
        or port is not None
        or parts.username is not None
        or parts.password is not None
        or parts.path
        or parts.query
        or parts.fragment
        or text.endswith(":")
    ):
        raise RefusedHost()
    return f"https://{company}.pipedrive.com"


def is_allowed_pipedrive_base(value: str) -> bool:
    try:
        pipedrive_base(value)
    except RefusedHost:
        return False
    return True
