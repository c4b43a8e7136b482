"""Connection services: connect (Xero, Pipedrive OAuth or API token), pick a tenant, disconnect, test.

Design choice, one consent per tenant: Xero rotates the refresh token on every refresh and a token
set must live in one place, so every XeroConnection row owns its own token set. A consent that
granted several organisations lets the admin pick one; connecting another organisation runs the
flow again (a new consent, a new token set).
"""

from __future__ import annotations

import json
import logging
import time
import zoneinfo
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector.clients.http import backoff, retry_after_seconds
from connector.clients.pipedrive import PipedriveClient
from connector.clients.xero import XeroClient
from connector.connections import hosts, oauth, timezones
from connector.errors import AuthExpired, ConnectionBroken, ConnectorError
from connector.models import ConnectionStatus, OAuthState, PipedriveConnection, XeroConnection

logger = logging.getLogger(__name__)


def xero_redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}/connect/xero/callback/"


def pipedrive_redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}/connect/pipedrive/callback/"


# --- Xero connect ---


def start_xero_connect(client_id: str, client_secret: str, user_id=None) -> str:
    """Store a fresh state + PKCE verifier and return Xero's authorization URL to redirect to."""
    row, challenge = oauth.new_state(
        "xero",
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=xero_redirect_uri(),
        user_id=user_id,
    )
    return oauth.xero_authorize_url(row, challenge)


def finish_xero_callback(state: str, code: str, user_id=None) -> OAuthState:
    """Check the state (single use, the same user's), exchange the code; the token set waits on the
    state row for the pick."""
    row = oauth.consume_state("xero", state, user_id=user_id)
    token_set = oauth.exchange_xero_code(row, code)
    row.token_set = _json_dumps(token_set)
    row.save(update_fields=["token_set"])
    return row


def list_xero_tenants(row: OAuthState) -> list[dict]:
    """The organisations this consent reached (GET /connections)."""
    token_set = _json_loads(row.token_set)
    response = requests.get(
        settings.XERO_CONNECTIONS_URL,
        headers={"Authorization": f"Bearer {token_set['access_token']}", "Accept": "application/json"},
        timeout=oauth.timeout(),
    )
    response.raise_for_status()
    return [c for c in response.json() if c.get("tenantType", "ORGANISATION") == "ORGANISATION"]


def pick_xero_tenant(row: OAuthState, tenant_id: str) -> XeroConnection:
    """Create (or reconnect) the tenant's row, which takes over this consent's token set."""
    if not row.token_set:
        raise oauth.BadState("This authorization was already used to pick a tenant; connect again.")
    tenants = {t["tenantId"]: t for t in list_xero_tenants(row)}
    if tenant_id not in tenants:
        raise ConnectorError("That organisation is not part of this consent; pick one from the list.")
    tenant = tenants[tenant_id]
    token_set = _json_loads(row.token_set)
    now = timezone.now()
    with transaction.atomic():
        conn = (
            XeroConnection.objects.select_for_update()
            .filter(tenant_id=tenant_id)
            .exclude(status=ConnectionStatus.DISCONNECTED)
            .first()
        ) or XeroConnection(tenant_id=tenant_id)
        conn.tenant_name = tenant.get("tenantName") or ""
        conn.xero_connection_id = tenant.get("id") or ""
        conn.auth_event_id = tenant.get("authEventId") or ""
        conn.client_id, conn.client_secret = row.client_id, row.client_secret
        conn.access_token = token_set["access_token"]
        conn.refresh_token = token_set.get("refresh_token", "")
        conn.expires_at = oauth.expiry(token_set)
        conn.previous_refresh_token, conn.previous_refresh_grace_until = "", None
        conn.scopes = token_set.get("scope", "")
        conn.status, conn.last_error = ConnectionStatus.ACTIVE, ""
        conn.secrets_set_at = conn.last_refreshed_at = now
        conn.save()
        # The token set now lives in exactly one place.
        row.token_set = ""
        row.save(update_fields=["token_set"])
    logger.info("Connected Xero organisation %s", conn)
    read_organisation_timezone(conn)
    return conn


SETTINGS_SCOPES = ("accounting.settings", "accounting.settings.read")


def read_organisation_timezone(conn: XeroConnection) -> str:
    """Read the organisation's time zone from Xero (GET /Organisation) and keep it on the row, as an
    IANA name; "" when the consent lacks the settings scope, Xero does not answer, or the name is not
    one the map knows. Never fails the caller: connecting goes on, and the next reader tries again."""
    if not set(conn.scopes.split()) & set(SETTINGS_SCOPES):
        logger.warning(
            "Xero %s: the consent lacks accounting.settings.read; its time zone is taken as UTC "
            "until it is connected again with that scope",
            conn,
        )
        return ""
    try:
        xero_name = str(xero_client(conn).organisation().get("Timezone") or "")
    except (ConnectorError, LookupError, ValueError, TypeError) as exc:
        logger.warning("Xero %s: its time zone could not be read (%s)", conn, type(exc).__name__)
        return ""
    iana = timezones.iana_name(xero_name)
    if not iana:
        logger.warning(
            "Xero %s: time zone %r is not one the connector knows; UTC is assumed", conn, xero_name
        )
        return ""
    if iana != conn.org_timezone:
        conn.org_timezone = iana
        XeroConnection.objects.filter(pk=conn.pk).update(org_timezone=iana)
    return iana


def organisation_timezone(connection: XeroConnection) -> zoneinfo.ZoneInfo:
    """The Xero organisation's time zone, in which its due dates fall and its days begin: the stored
    one, read from Xero again when it is empty; UTC when it still cannot be told."""
    name = connection.org_timezone or read_organisation_timezone(connection)
    return timezones.zone(name)


# --- Pipedrive connect ---


def start_pipedrive_connect(client_id: str, client_secret: str, user_id=None) -> str:
    row, _ = oauth.new_state(
        "pipedrive",
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=pipedrive_redirect_uri(),
        user_id=user_id,
    )
    return oauth.pipedrive_authorize_link(row)


def finish_pipedrive_callback(state: str, code: str, user_id=None) -> PipedriveConnection:
    row = oauth.consume_state("pipedrive", state, user_id=user_id)
    token_set = oauth.exchange_pipedrive_code(row, code)
    # The token answer names the company's API host; it gets the token only if it is Pipedrive's.
    api_domain = hosts.pipedrive_base(token_set.get("api_domain") or settings.PIPEDRIVE_API_URL)
    me = _pipedrive_me(api_domain, {"Authorization": f"Bearer {token_set['access_token']}"})
    conn = _pipedrive_row(me)
    conn.auth_type = PipedriveConnection.AuthType.OAUTH
    conn.api_domain = api_domain
    conn.client_id, conn.client_secret = row.client_id, row.client_secret
    conn.access_token = token_set["access_token"]
    conn.refresh_token = token_set.get("refresh_token", "")
    conn.expires_at = oauth.expiry(token_set)
    conn.scopes = token_set.get("scope", "")
    conn.api_token = ""
    return _activate(conn)


def connect_pipedrive_api_token(api_token: str, api_domain: str = "") -> PipedriveConnection:
    """Validate a personal API token with GET /api/v1/users/me and store it.

    A host that is not Pipedrive's is refused before any request (hosts.RefusedHost)."""
    base = hosts.pipedrive_base(api_domain or settings.PIPEDRIVE_API_URL)
    me = _pipedrive_me(base, {"x-api-token": api_token})
    conn = _pipedrive_row(me)
    conn.auth_type = PipedriveConnection.AuthType.API_TOKEN
    conn.api_domain = base
    conn.api_token = api_token
    conn.access_token = conn.refresh_token = ""
    return _activate(conn)


ME_429_TRIES = (
    4  # a rate-limited, 5xx or timed-out "who am I" is asked again after Retry-After, this many times at most
)
ME_429_MAX_WAIT = 10.0  # seconds; a longer Retry-After is not waited for in a connect request


def _pipedrive_me(base: str, headers: dict) -> dict:
    """Who the token belongs to. Callers pass a base checked by hosts.pipedrive_base; an address that
    does not answer like Pipedrive gives the same text as a refused one (no telling ports apart)."""
    try:
        return _ask_pipedrive_me(base, headers)
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        logger.warning("Pipedrive's users/me did not answer as expected: %s", type(exc).__name__)
        raise ConnectorError(hosts.UNREACHABLE) from exc


def _ask_pipedrive_me(base: str, headers: dict) -> dict:
    for attempt in range(ME_429_TRIES):
        # A 429, a server error (5xx), a time-out or a dropped connection is asked again, as the API
        # clients do for a GET (connector/clients/http.py).
        try:
            response = requests.get(f"{base}/api/v1/users/me", headers=headers, timeout=oauth.timeout())
        except (requests.ConnectionError, requests.Timeout):
            if attempt + 1 == ME_429_TRIES:
                raise
            time.sleep(backoff(attempt))
            continue
        if response.status_code != 429 and response.status_code < 500:
            break
        wait = retry_after_seconds(response.headers.get("Retry-After")) or 1.0
        if wait > ME_429_MAX_WAIT:
            break
        time.sleep(wait)
    if response.status_code == 401:
        raise ConnectorError("Pipedrive refused the token (401): check it and try again.")
    if response.status_code == 429:
        raise ConnectorError(
            "Pipedrive is limiting this company's API calls right now (429): try connecting again in a "
            "minute."
        )
    response.raise_for_status()
    return response.json()["data"]


def _pipedrive_row(me: dict) -> PipedriveConnection:
    company_id = me.get("company_id")
    conn = (
        PipedriveConnection.objects.filter(company_id=company_id)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .first()
    ) or PipedriveConnection(company_id=company_id)
    conn.company_name = me.get("company_name") or ""
    conn.company_domain = me.get("company_domain") or ""
    conn.user_name, conn.user_email = me.get("name") or "", me.get("email") or ""
    return conn


def _activate(conn: PipedriveConnection) -> PipedriveConnection:
    now = timezone.now()
    conn.status, conn.last_error = ConnectionStatus.ACTIVE, ""
    conn.secrets_set_at = conn.last_refreshed_at = now
    conn.save()
    logger.info("Connected Pipedrive company %s (%s)", conn, conn.get_auth_type_display())
    return conn


# --- disconnect ---


def disconnect_xero(conn: XeroConnection) -> list[str]:
    """Remove the tenant connection and revoke the token set; returns any problems met (stored anyway)."""
    problems = []
    token = conn.access_token
    if conn.xero_connection_id and token:
        try:
            response = requests.delete(
                f"{settings.XERO_CONNECTIONS_URL}/{conn.xero_connection_id}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=oauth.timeout(),
            )
            if response.status_code not in (200, 204, 404):
                problems.append(f"Xero answered {response.status_code} to removing the tenant connection.")
        except requests.RequestException as exc:
            problems.append(f"Removing the tenant connection failed: {type(exc).__name__}.")
    if conn.refresh_token:
        try:
            response = requests.post(
                oauth.xero_revocation_url(),
                data={"token": conn.refresh_token},
                auth=(conn.client_id, conn.client_secret),
                timeout=oauth.timeout(),
            )
            if response.status_code != 200:
                problems.append(f"Xero answered {response.status_code} to the token revocation.")
        except requests.RequestException as exc:
            problems.append(f"Revoking the token failed: {type(exc).__name__}.")
    _forget(conn, problems)
    return problems


def disconnect_pipedrive(conn: PipedriveConnection) -> list[str]:
    problems = []
    if conn.auth_type == PipedriveConnection.AuthType.OAUTH and conn.refresh_token:
        try:
            response = requests.post(
                oauth.pipedrive_revoke_url(),
                data={"token": conn.refresh_token, "token_type_hint": "refresh_token"},
                auth=(conn.client_id, conn.client_secret),
                timeout=oauth.timeout(),
            )
            if response.status_code != 200:
                problems.append(f"Pipedrive answered {response.status_code} to the token revocation.")
        except requests.RequestException as exc:
            problems.append(f"Revoking the token failed: {type(exc).__name__}.")
    _forget(conn, problems)
    return problems


def _forget(conn, problems: list[str]) -> None:
    for name in ("access_token", "refresh_token", "api_token", "previous_refresh_token"):
        if hasattr(conn, name):
            setattr(conn, name, "")
    conn.status = ConnectionStatus.DISCONNECTED
    conn.last_error = " ".join(problems)
    conn.save()
    logger.info("Disconnected %s", conn)


# --- API clients and "Test connection" ---


def xero_client(conn: XeroConnection):
    return XeroClient(conn.tenant_id, oauth.xero_token_provider(conn))


def pipedrive_client(conn: PipedriveConnection):
    auth: str | oauth.PipedriveTokenProvider
    if conn.auth_type == PipedriveConnection.AuthType.API_TOKEN:
        auth = conn.api_token
    else:
        auth = oauth.pipedrive_token_provider(conn)
    # A stored host that is not Pipedrive's (an old row, an edited one) never gets the token.
    base_url = hosts.pipedrive_base(conn.api_domain) if conn.api_domain else None
    return PipedriveClient(conn.company_id, base_url=base_url, auth=auth)


@dataclass
class CheckResult:
    ok: bool
    lines: list[str] = field(default_factory=list)

    def __str__(self):
        return "; ".join(self.lines)


def check_xero(conn: XeroConnection) -> CheckResult:
    try:
        client = xero_client(conn)
        org = client.get_organisation()
    except ConnectionBroken as exc:
        return CheckResult(False, [str(exc)])
    except ConnectorError as exc:
        return CheckResult(False, [f"Xero {conn}: {exc}"])
    name = (org.get("Organisations") or [{}])[0].get("Name", "") if isinstance(org, dict) else ""
    lines = [f"Xero tenant {name or conn.tenant_name} ({conn.tenant_id})", f"scopes: {conn.scopes or '-'}"]
    lines.append(f"remaining: {remaining_limits(client.limiter)}")
    return CheckResult(True, lines)


def remaining_limits(limiter) -> str:
    """'minute 59, day 4999' from the shared limiter (connector.limits), or a note when it cannot tell."""
    try:
        return ", ".join(f"{w.kind} {limiter.remaining(w.kind)}" for w in limiter.windows(1)) or "no limits"
    except Exception:  # a limiter without windows (NoLimiter) must not fail the test action
        return "unknown"


def check_pipedrive(conn: PipedriveConnection) -> CheckResult:
    try:
        client = pipedrive_client(conn)
        me = client.get_current_user()
    except AuthExpired:
        if conn.auth_type == PipedriveConnection.AuthType.API_TOKEN:
            return CheckResult(False, [str(oauth.mark_broken(conn, oauth.REVOKED_PERSONAL_KEY_MESSAGE))])
        return CheckResult(False, [f"Pipedrive {conn}: the token was refused after a refresh."])
    except ConnectionBroken as exc:
        return CheckResult(False, [str(exc)])
    except ConnectorError as exc:
        return CheckResult(False, [f"Pipedrive {conn}: {exc}"])
    return CheckResult(
        True,
        [
            f"Pipedrive company {me.get('company_name', conn.company_name)} ({me.get('company_domain', '')})",
            f"user: {me.get('name', '')}",
            f"auth: {conn.get_auth_type_display()}, scopes: {conn.scopes or '-'}",
            f"remaining: {remaining_limits(client.limiter)}",
        ],
    )


def _json_dumps(data) -> str:
    return json.dumps(data)


def _json_loads(text: str):
    return json.loads(text)
