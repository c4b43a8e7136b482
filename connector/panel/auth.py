"""Who is asking for the panel: the JWT Pipedrive signs each JSON panel request with.

Pipedrive draws the panel by calling its API endpoint with GET and the query parameters
``resource``, ``view``, ``userId``, ``companyId``, ``selectedIds`` and ``token``: a JWT (HS256) signed
with the panel's JWT secret, or the app's client secret when the panel has none
(Pipedrive's JSON panel documentation, app-panels-adding-a-panel). Anyone who knows the endpoint's
URL can call it, so an answer is given only when

- the token's signature verifies with the pair's panel secret (``SyncPair.pipedrive_panel_secret``)
  or, when that is empty, the client secret of the pair's Pipedrive OAuth app;
- the token is fresh: ``exp`` not passed, or without ``exp`` an ``iat`` at most ``MAX_AGE`` ago;
- its ``companyId`` / ``userId`` claims are the query's (a token of one request cannot be reused
  with other parameters) and the company is the pair's connected Pipedrive company.

Refusals say why in Pipedrive's error shape (``{"error": {"title", "subtitle"}}``) and never
echo the token or a secret.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt
import jwt.types
from django.utils import timezone

from connector.models import PipedriveConnection, SyncPair

ALGORITHMS = ["HS256"]
LEEWAY = dt.timedelta(seconds=30)  # clocks of Pipedrive and this server differ a little
MAX_AGE = dt.timedelta(minutes=10)  # a token without ``exp``: how long after ``iat`` it is accepted
RESOURCES = ("organization", "deal")
MAX_TOKEN_LENGTH = 4096


class PanelRefused(Exception):
    """The request is not answered: ``status`` (400/401/403/404), a short title and the reason."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class PanelRequest:
    """A verified panel request: which pair, which record, which Pipedrive user asked."""

    pair: SyncPair
    resource: str
    record_id: int
    user_id: int
    company_id: int


def find_pair(key: str) -> SyncPair:
    """The pair by its URL key with its Pipedrive and Xero connections; only the fields the panel needs
    are read (and so decrypted)."""
    pair = (
        SyncPair.objects.select_related("pipedrive_connection", "xero_connection")
        .only(
            "xero_connection__id",
            "xero_connection__org_timezone",  # the panel's today is the organisation's
            "id",
            "key",
            "name",
            "options",
            "pipedrive_panel_secret",
            "pipedrive_connection__id",
            "pipedrive_connection__company_id",
            "pipedrive_connection__company_domain",
            "pipedrive_connection__auth_type",
            "pipedrive_connection__client_secret",
        )
        .filter(key=key)
        .first()
    )
    if pair is None:
        raise PanelRefused(404, "Unknown panel address", "No sync pair has this panel address.")
    return pair


def panel_secrets(pair: SyncPair) -> list[str]:
    """The secrets a token may be signed with: the panel's own JWT secret when set, else the client
    secret of the pair's Pipedrive OAuth app (what Pipedrive signs with when the panel has none)."""
    if pair.pipedrive_panel_secret:
        return [pair.pipedrive_panel_secret]
    connection = pair.pipedrive_connection
    if connection.auth_type == PipedriveConnection.AuthType.OAUTH and connection.client_secret:
        return [connection.client_secret]
    return []


def _integer(value, name: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise PanelRefused(400, "Bad request", f"{name} must be a number.") from None
    if number <= 0 or number > 2**63 - 1:
        raise PanelRefused(400, "Bad request", f"{name} must be a positive id.")
    return number


def verified_claims(token: str, secrets: list[str], now: dt.datetime) -> dict:
    """The token's claims once its signature and freshness are checked; ``PanelRefused`` (401) otherwise."""
    if not token:
        raise PanelRefused(
            401, "Not signed by Pipedrive", "The request has no token: Pipedrive signs each one."
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise PanelRefused(401, "Not signed by Pipedrive", "The token is not a JWT Pipedrive signs.")
    if not secrets:
        raise PanelRefused(
            403,
            "Panel not set up",
            "No JWT secret is stored for this panel: paste the panel's JWT secret into the sync pair "
            "(Pipedrive panel section) or connect Pipedrive with the app's OAuth client secret.",
        )
    options: jwt.types.Options = {"require": ["iat"], "verify_iat": True}
    for secret in secrets:
        try:
            claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options=options, leeway=LEEWAY)
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise PanelRefused(
                401, "Token expired", "The token has expired: Pipedrive signs a new one per view."
            ) from None
        except jwt.ImmatureSignatureError:
            raise PanelRefused(401, "Token not yet valid", "The token was issued in the future.") from None
        except jwt.InvalidTokenError:
            raise PanelRefused(
                401, "Not signed by Pipedrive", "The token is not a valid JWT (HS256)."
            ) from None
        break
    else:
        raise PanelRefused(
            401, "Not signed by Pipedrive", "The token's signature does not verify with the panel's secret."
        )
    if "exp" not in claims:
        issued = dt.datetime.fromtimestamp(int(claims["iat"]), tz=dt.UTC)
        if now - issued > MAX_AGE + LEEWAY:
            raise PanelRefused(
                401, "Token expired", "The token is too old: Pipedrive signs a new one per view."
            )
    return claims


def verify(pair: SyncPair, query, now: dt.datetime | None = None) -> PanelRequest:
    """Check one panel request's query (``request.GET``) against the pair; the verified request or
    ``PanelRefused``. The signature is checked first: an unsigned caller learns nothing else."""
    claims = verified_claims(str(query.get("token") or ""), panel_secrets(pair), now or timezone.now())
    for claim, parameter in (("companyId", "companyId"), ("userId", "userId")):
        if claim not in claims:
            raise PanelRefused(401, "Not signed by Pipedrive", f"The token carries no {claim}.")
        if str(claims[claim]) != str(query.get(parameter) or ""):
            raise PanelRefused(
                401, "Token does not match", f"The token's {claim} is not the request's {parameter}."
            )
    company_id = _integer(claims["companyId"], "companyId")
    user_id = _integer(claims["userId"], "userId")
    if company_id != pair.pipedrive_connection.company_id:
        raise PanelRefused(
            403,
            "Another Pipedrive company",
            "This panel serves the Pipedrive company connected to its sync pair, not this one.",
        )
    resource = str(query.get("resource") or "")
    if resource not in RESOURCES:
        raise PanelRefused(400, "Not shown here", "This panel is shown on organization and deal pages only.")
    selected = str(query.get("selectedIds") or "").split(",")[0]
    return PanelRequest(
        pair=pair,
        resource=resource,
        record_id=_integer(selected, "selectedIds"),
        user_id=user_id,
        company_id=company_id,
    )
