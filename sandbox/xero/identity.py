"""Sandbox Xero identity: consent codes, token sets, refresh-token rotation, revocation.

Lifetimes follow Xero: access tokens 30 minutes, refresh tokens 60 days unused, codes
5 minutes and single use. A refresh token rotates on first use; within the 30-minute
grace after that, presenting it again answers the same successor (with a new access
token), so a client that lost the response recovers; after the grace it is invalid_grant.
All durations go through the sandbox clock, so the time scale shortens them.
"""

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from sandbox import clock, faults
from sandbox.xero.models import AuthorizationCode, Grant, Token, XeroApp

ACCESS_TOKEN_SECONDS = 1800
REFRESH_TOKEN_SECONDS = 60 * 24 * 3600
REFRESH_GRACE_SECONDS = 1800
CODE_SECONDS = 300
ID_TOKEN_SECONDS = 300
ISSUER = "https://identity.xero.com"
KNOWN_SCOPES = {
    "openid",
    "profile",
    "email",
    "offline_access",
    "paymentservices",
    "finance.accountingactivity.read",
}


class OAuthError(Exception):
    """An OAuth error answered as ``{"error": code}`` (400 unless ``status`` says otherwise)."""

    def __init__(self, error: str, status: int = 400, description: str = ""):
        super().__init__(description or error)
        self.error, self.status, self.description = error, status, description


def scope_is_valid(scope: str) -> bool:
    words = scope.split()
    return bool(words) and all(w in KNOWN_SCOPES or w.startswith("accounting.") for w in words)


def _signing_key() -> bytes:
    return hashlib.sha256(b"sandbox-xero-jwt:" + settings.SECRET_KEY.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    """An HS256 JWT, shaped like Xero's tokens so clients that decode claims can."""
    header = _b64(json.dumps({"alg": "HS256", "kid": "sandbox", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(_signing_key(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def check_client(client_id: str, client_secret: str) -> XeroApp:
    app = XeroApp.objects.filter(client_id=client_id).first()
    if not app or not hmac.compare_digest(app.client_secret, client_secret or ""):
        raise OAuthError("invalid_client")
    return app


def issue_code(grant: Grant, redirect_uri: str, code_challenge: str = "", method: str = "", nonce: str = ""):
    return AuthorizationCode.objects.create(
        code=secrets.token_urlsafe(32),
        grant=grant,
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        code_challenge_method=method,
        nonce=nonce,
        expires_at=clock.now() + clock.duration(CODE_SECONDS),
    )


@dataclass
class TokenSet:
    access_token: Token
    refresh_token: Token | None
    id_token: str | None
    scope: str

    def as_response(self) -> dict:
        expires_in = round((self.access_token.expires_at - self.access_token.created_at).total_seconds())
        body = {"access_token": self.access_token.token, "expires_in": expires_in, "token_type": "Bearer"}
        if self.id_token:
            body["id_token"] = self.id_token
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token.token
        body["scope"] = self.scope
        return body


def _access_token(grant: Grant) -> Token:
    now = clock.now()
    expires = now + clock.duration(ACCESS_TOKEN_SECONDS)
    claims = {
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "iss": ISSUER,
        "aud": f"{ISSUER}/resources",
        "client_id": grant.app.client_id,
        "sub": hashlib.sha256(grant.user_email.encode()).hexdigest()[:32],
        "auth_time": int(grant.created_at.timestamp()),
        "xero_userid": str(uuid.uuid5(uuid.NAMESPACE_URL, grant.user_email)),
        "global_session_id": grant.auth_event_id.hex,
        "jti": secrets.token_hex(16),
        "authentication_event_id": str(grant.auth_event_id),
        "scope": grant.scope.split(),
    }
    return Token.objects.create(
        kind=Token.Kind.ACCESS, token=make_jwt(claims), grant=grant, expires_at=expires, created_at=now
    )


def _refresh_token(grant: Grant) -> Token:
    now = clock.now()
    return Token.objects.create(
        kind=Token.Kind.REFRESH,
        token=secrets.token_hex(32),
        grant=grant,
        expires_at=now + clock.duration(REFRESH_TOKEN_SECONDS),
        created_at=now,
    )


def _id_token(grant: Grant, nonce: str = "") -> str | None:
    if "openid" not in grant.scope.split():
        return None
    now = clock.now()
    claims = {
        "nbf": int(now.timestamp()),
        "exp": int((now + clock.duration(ID_TOKEN_SECONDS)).timestamp()),
        "iss": ISSUER,
        "aud": grant.app.client_id,
        "iat": int(now.timestamp()),
        "auth_time": int(grant.created_at.timestamp()),
        "xero_userid": str(uuid.uuid5(uuid.NAMESPACE_URL, grant.user_email)),
        "global_session_id": grant.auth_event_id.hex,
        "sid": grant.auth_event_id.hex,
        "email": grant.user_email,
        "given_name": "Demo",
        "family_name": "User",
        "preferred_username": grant.user_email,
    }
    if nonce:
        claims["nonce"] = nonce
    return make_jwt(claims)


def _verify_pkce(code: AuthorizationCode, verifier: str) -> bool:
    if not code.code_challenge:
        return True
    if not verifier:
        return False
    if code.code_challenge_method == "plain":
        return hmac.compare_digest(verifier, code.code_challenge)
    digest = _b64(hashlib.sha256(verifier.encode()).digest())
    return hmac.compare_digest(digest, code.code_challenge)


@transaction.atomic
def exchange_code(app: XeroApp, code: str, redirect_uri: str, code_verifier: str = "") -> TokenSet:
    row = AuthorizationCode.objects.select_for_update().filter(code=code, grant__app=app).first()
    if not row or row.used_at or row.expires_at <= clock.now() or row.grant.revoked_at:
        raise OAuthError("invalid_grant")
    if row.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", description="redirect_uri does not match the authorize request")
    if not _verify_pkce(row, code_verifier):
        raise OAuthError("invalid_grant", description="code_verifier does not match the code_challenge")
    row.used_at = clock.now()
    row.save(update_fields=["used_at"])
    grant = row.grant
    refresh = _refresh_token(grant) if "offline_access" in grant.scope.split() else None
    return TokenSet(_access_token(grant), refresh, _id_token(grant, row.nonce), grant.scope)


@transaction.atomic
def refresh(app: XeroApp, refresh_token: str) -> TokenSet:
    row = (
        # Lock only the token row: PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
        Token.objects.select_for_update(of=("self",))
        .select_related("grant")
        .filter(kind=Token.Kind.REFRESH, token=refresh_token, grant__app=app)
        .first()
    )
    now = clock.now()
    if (
        not row
        or row.revoked_at
        or row.grant.revoked_at
        or row.expires_at <= now
        or faults.get("xero").revoke_tokens
    ):
        raise OAuthError("invalid_grant")
    if row.rotated_at:
        # Already used: within the grace the client may have lost the answer; give it the same successor.
        if now - row.rotated_at > clock.duration(REFRESH_GRACE_SECONDS) or not row.replaced_by:
            raise OAuthError("invalid_grant")
        successor = row.replaced_by
    else:
        successor = _refresh_token(row.grant)
        row.rotated_at, row.replaced_by = now, successor
        row.save(update_fields=["rotated_at", "replaced_by"])
    return TokenSet(_access_token(row.grant), successor, _id_token(row.grant), row.grant.scope)


@transaction.atomic
def revoke(app: XeroApp, token: str) -> None:
    """Revoking a refresh token ends the consent: its tokens and all its connections."""
    row = Token.objects.filter(token=token, grant__app=app).select_related("grant").first()
    if not row:
        return  # RFC 7009: unknown tokens are not an error
    now = clock.now()
    grant = row.grant
    grant.revoked_at = now
    grant.save(update_fields=["revoked_at"])
    grant.tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
    grant.connections.filter(deleted_at__isnull=True).update(deleted_at=now)


def grant_for_access_token(token: str) -> Grant | None:
    """The consent behind a live access token, or None (unknown, expired, revoked)."""
    row = (
        Token.objects.select_related("grant__app")
        .filter(kind=Token.Kind.ACCESS, token=token, revoked_at__isnull=True, grant__revoked_at__isnull=True)
        .first()
    )
    if not row or row.expires_at <= clock.now():
        return None
    return row.grant


def expired_access_token(token: str) -> Token | None:
    """The access token, when it exists and was valid but has expired (Xero answers TokenExpired)."""
    if not token:
        return None
    row = Token.objects.filter(kind=Token.Kind.ACCESS, token=token, revoked_at__isnull=True).first()
    return row if row and row.expires_at <= clock.now() else None
