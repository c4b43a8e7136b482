"""OAuth2 for Xero and Pipedrive: authorization URLs with state + PKCE, code exchange, race-free refresh.

Refresh is the dangerous part: both services rotate the refresh token, so two workers refreshing
the same row would leave one of them holding a dead token. Every refresh therefore holds a lock on
the row (select_for_update on PostgreSQL, a per-row file lock on SQLite), re-reads the row,
refreshes only if still needed and stores the rotated token before the lock is released.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core.mail import mail_admins
from django.db import connection as db_connection
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from connector.connections import hosts
from connector.errors import ConnectionBroken, ConnectorError
from connector.locks import file_lock, lock_path
from connector.models import ConnectionStatus, OAuthState, PipedriveConnection, XeroConnection

logger = logging.getLogger(__name__)

# Refresh when the access token has less than this left, so a call never starts with a dying token.
REFRESH_MARGIN = timedelta(minutes=5)
# Xero accepts the previous refresh token for 30 minutes after a rotation.
XERO_REFRESH_GRACE = timedelta(minutes=30)
# A token request whose answer was lost is sent again (same refresh token) this many times.
LOST_RESPONSE_RETRIES = 3
STATE_LIFETIME = timedelta(minutes=15)


class OAuthFailure(ConnectorError):
    """The identity service refused a request; ``error`` is its OAuth error code."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


# --- endpoints (configuration only: the sandbox or the real services) ---


def xero_token_url() -> str:
    return f"{settings.XERO_IDENTITY_URL}/connect/token"


def xero_revocation_url() -> str:
    return f"{settings.XERO_IDENTITY_URL}/connect/revocation"


def pipedrive_authorize_url() -> str:
    return f"{settings.PIPEDRIVE_OAUTH_URL}/oauth/authorize"


def pipedrive_token_url() -> str:
    return f"{settings.PIPEDRIVE_OAUTH_URL}/oauth/token"


def pipedrive_revoke_url() -> str:
    return f"{settings.PIPEDRIVE_OAUTH_URL}/oauth/revoke"


def timeout() -> float:
    return settings.HTTP_TIMEOUT_SECONDS


# --- state + PKCE ---


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def new_state(service: str, *, client_id: str, client_secret: str, redirect_uri: str, user_id=None):
    verifier, challenge = pkce_pair()
    row = OAuthState.objects.create(
        state=secrets.token_urlsafe(32),
        service=service,
        code_verifier=verifier,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        user_id=user_id,
        expires_at=timezone.now() + STATE_LIFETIME,
    )
    return row, challenge


class BadState(ConnectorError):
    """The ``state`` of a callback is unknown, expired or already used: nothing is stored."""


def consume_state(service: str, state: str, user_id=None) -> OAuthState:
    """Mark the state used (once, atomically) and return it; a second use fails.

    Only the user who started the flow may finish it: a callback carrying another user's state is
    refused and that state is left as it was (not consumed), so its owner can still finish."""
    now = timezone.now()
    live = OAuthState.objects.filter(
        service=service, state=state or "-", used_at__isnull=True, expires_at__gt=now
    )
    if live.exists() and not live.filter(user_id=user_id).exists():
        raise BadState(
            "This authorization was started by another user. Nothing was stored; start the connection "
            "yourself from the admin."
        )
    used = live.filter(user_id=user_id).update(used_at=now)
    if used != 1:
        raise BadState(
            "This authorization link is unknown, expired or was already used. Nothing was stored; "
            "start the connection again from the admin."
        )
    return OAuthState.objects.get(service=service, state=state)


def xero_authorize_url(state_row: OAuthState, challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": state_row.client_id,
        "redirect_uri": state_row.redirect_uri,
        "scope": settings.XERO_SCOPES,
        "state": state_row.state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{settings.XERO_AUTHORIZE_URL}?{urlencode(query)}"


def pipedrive_authorize_link(state_row: OAuthState) -> str:
    # Pipedrive's OAuth does not document PKCE; state alone protects the callback.
    query = {
        "client_id": state_row.client_id,
        "redirect_uri": state_row.redirect_uri,
        "state": state_row.state,
    }
    return f"{pipedrive_authorize_url()}?{urlencode(query)}"


# --- token endpoint calls ---


def _token_post(url: str, data: dict, auth: tuple[str, str]) -> dict:
    """POST to a token endpoint; a lost answer (timeout, dropped connection) is sent again as is.

    Resending the same refresh token is safe for Xero: within the 30-minute grace it answers the
    same successor again. Pipedrive's refresh tokens are not single-use, so the retry is safe there too.
    """
    for attempt in range(LOST_RESPONSE_RETRIES + 1):
        try:
            response = requests.post(url, data=data, auth=auth, timeout=timeout())
            break
        except (requests.Timeout, requests.ConnectionError):
            if attempt == LOST_RESPONSE_RETRIES:
                raise
            logger.warning(
                "Token request to %s lost its answer; sending it again (attempt %d)", url, attempt + 2
            )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        raise OAuthFailure(
            str(body.get("error") or f"http_{response.status_code}"), str(body.get("error_description") or "")
        )
    return body


def exchange_xero_code(state_row: OAuthState, code: str) -> dict:
    return _token_post(
        xero_token_url(),
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": state_row.redirect_uri,
            "code_verifier": state_row.code_verifier,
        },
        (state_row.client_id, state_row.client_secret),
    )


def exchange_pipedrive_code(state_row: OAuthState, code: str) -> dict:
    return _token_post(
        pipedrive_token_url(),
        {"grant_type": "authorization_code", "code": code, "redirect_uri": state_row.redirect_uri},
        (state_row.client_id, state_row.client_secret),
    )


def expiry(token_set: dict):
    return timezone.now() + timedelta(seconds=int(token_set.get("expires_in") or 1800))


# --- broken connections ---


def admin_change_url(connection) -> str:
    try:
        path = reverse(f"admin:connector_{connection._meta.model_name}_change", args=[connection.pk])
    except NoReverseMatch:
        path = f"/admin/connector/{connection._meta.model_name}/{connection.pk}/change/"
    return f"{settings.PUBLIC_BASE_URL}{path}"


def mark_broken(connection, reason: str) -> ConnectionBroken:
    """Store the reason (naming the admin page to reconnect), alert, and return the error to raise."""
    url = admin_change_url(connection)
    label = f"{connection._meta.verbose_name} {connection}"
    error = ConnectionBroken(label, reason, url)
    type(connection).objects.filter(pk=connection.pk).update(
        status=ConnectionStatus.BROKEN, last_error=str(error), updated_at=timezone.now()
    )
    connection.status, connection.last_error = ConnectionStatus.BROKEN, str(error)
    # The message holds no secret: label, reason and URL only.
    logger.error("Connection broken: %s", error)
    mail_admins(f"Connection broken: {label}", str(error), fail_silently=True)
    return error


@contextmanager
def _refresh_lock(model, pk):
    """Serialize refreshes of one row across threads and processes, and yield the row re-read inside.

    PostgreSQL: a transaction holding ``select_for_update`` on the row. SQLite locks the whole
    database for a writer, so holding a write transaction across the HTTP call would block every
    other writer (the sandbox's token endpoint included); there an exclusive file lock per row
    (flock, which also works between processes of one host) guards the refresh instead.
    """
    if db_connection.vendor == "postgresql":
        with transaction.atomic():
            yield model.objects.select_for_update().get(pk=pk)
        return
    with file_lock(lock_path(f"{model._meta.model_name}-{pk}")):
        yield model.objects.get(pk=pk)


def _needs_refresh(connection) -> bool:
    return (
        not connection.access_token
        or not connection.expires_at
        or (connection.expires_at - timezone.now() < REFRESH_MARGIN)
    )


def _ensure_usable(connection):
    if connection.status in (ConnectionStatus.BROKEN, ConnectionStatus.DISCONNECTED):
        raise ConnectionBroken(
            f"{connection._meta.verbose_name} {connection}",
            connection.last_error or f"The connection is {connection.get_status_display().lower()}.",
            admin_change_url(connection),
        )


# --- Xero refresh ---


def _refresh(model, connection_id, *, service, token_url, refused, apply, force, seen_access_token):
    """Refresh one connection's token set under its row lock; returns the fresh row.

    Re-reads the row inside the lock and refreshes only if still needed, so however many
    workers ask at once, one refresh happens. ``force`` (after a 401) refreshes even when the
    expiry looks fine, unless another worker has already replaced ``seen_access_token``.
    ``apply(conn, token_set, now, old_refresh_token)`` stores the service's own fields; the row
    is saved once, in the same step as the rotated refresh token.
    """
    broken_reason = None
    with _refresh_lock(model, connection_id) as conn:
        _ensure_usable(conn)
        if force and seen_access_token is not None and conn.access_token != seen_access_token:
            return conn  # another worker refreshed while we waited for the lock
        if not force and not _needs_refresh(conn):
            return conn
        try:
            token_set = _token_post(
                token_url,
                {"grant_type": "refresh_token", "refresh_token": conn.refresh_token},
                (conn.client_id, conn.client_secret),
            )
        except OAuthFailure as exc:
            if exc.error != "invalid_grant":
                raise
            broken_reason = refused
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ConnectorError(f"{service}'s token endpoint did not answer: {type(exc).__name__}") from exc
        else:
            now, old_refresh_token = timezone.now(), conn.refresh_token
            conn.access_token = token_set["access_token"]
            conn.refresh_token = token_set.get("refresh_token") or conn.refresh_token
            conn.expires_at = expiry(token_set)
            conn.scopes = token_set.get("scope", conn.scopes)
            conn.last_refreshed_at = now
            conn.status, conn.last_error = ConnectionStatus.ACTIVE, ""
            apply(conn, token_set, now, old_refresh_token)
            conn.save()
            logger.info("Refreshed the %s token of %s", service, conn)
            return conn
    raise mark_broken(conn, broken_reason)


def _keep_xero_grace_token(conn, token_set, now, old_refresh_token):
    # A lost answer is recovered by resending the old token within Xero's 30-minute grace.
    conn.previous_refresh_token = old_refresh_token
    conn.previous_refresh_grace_until = now + XERO_REFRESH_GRACE


def refresh_xero(connection_id: int, *, force: bool = False, seen_access_token: str | None = None):
    """Refresh the Xero token set under the row lock; returns the fresh row."""
    return _refresh(
        XeroConnection,
        connection_id,
        service="Xero",
        token_url=xero_token_url(),
        refused=(
            "Xero refused the refresh token (invalid_grant): the consent was revoked, expired after "
            "60 days unused, or the token was lost."
        ),
        apply=_keep_xero_grace_token,
        force=force,
        seen_access_token=seen_access_token,
    )


@dataclass
class XeroTokenProvider:
    """Hands the XeroClient a live access token; refreshes under the row lock when needed."""

    connection: XeroConnection

    def get_token(self) -> str:
        self.connection.refresh_from_db()
        _ensure_usable(self.connection)
        if _needs_refresh(self.connection):
            self.connection = refresh_xero(self.connection.pk)
        return self.connection.access_token

    def on_unauthorized(self) -> str:
        seen = self.connection.access_token
        self.connection = refresh_xero(self.connection.pk, force=True, seen_access_token=seen)
        return self.connection.access_token


def xero_token_provider(connection: XeroConnection) -> XeroTokenProvider:
    return XeroTokenProvider(connection)


# --- Pipedrive refresh ---

REVOKED_PERSONAL_KEY_MESSAGE = (
    "Pipedrive refused the API token (401). This happens when the user who owns the token was "
    "deactivated or deleted, or when the token was regenerated in Pipedrive's personal preferences. "
    "Enter the new token, or better, connect with OAuth, which does not depend on one user's token."
)


def _reread_api_domain(conn, token_set, now, old_refresh_token):
    # Pipedrive may move a company to another api_domain; every refresh says where it is now. A
    # host that is not Pipedrive's is not taken: the token keeps going to the known one.
    answered = token_set.get("api_domain") or ""
    if not answered:
        return
    try:
        conn.api_domain = hosts.pipedrive_base(answered)
    except hosts.RefusedHost:
        logger.warning("Pipedrive's token answer named a host that is not Pipedrive's; kept %s", conn)


def refresh_pipedrive(connection_id: int, *, force: bool = False, seen_access_token: str | None = None):
    """Refresh a Pipedrive OAuth token set under the row lock, re-reading ``api_domain`` each time."""
    return _refresh(
        PipedriveConnection,
        connection_id,
        service="Pipedrive",
        token_url=pipedrive_token_url(),
        refused=(
            "Pipedrive refused the refresh token (invalid_grant): the app was uninstalled "
            "or the consent revoked."
        ),
        apply=_reread_api_domain,
        force=force,
        seen_access_token=seen_access_token,
    )


@dataclass
class PipedriveTokenProvider:
    """API token (sent as ``x-api-token`` by the client) or OAuth access token (Bearer)."""

    connection: PipedriveConnection

    def get_token(self) -> str:
        self.connection.refresh_from_db()
        _ensure_usable(self.connection)
        if self.connection.auth_type == PipedriveConnection.AuthType.API_TOKEN:
            return self.connection.api_token
        if _needs_refresh(self.connection):
            self.connection = refresh_pipedrive(self.connection.pk)
        return self.connection.access_token

    def on_unauthorized(self) -> str:
        if self.connection.auth_type == PipedriveConnection.AuthType.API_TOKEN:
            raise mark_broken(self.connection, REVOKED_PERSONAL_KEY_MESSAGE)
        seen = self.connection.access_token
        self.connection = refresh_pipedrive(self.connection.pk, force=True, seen_access_token=seen)
        return self.connection.access_token


def pipedrive_token_provider(connection: PipedriveConnection) -> PipedriveTokenProvider:
    return PipedriveTokenProvider(connection)
