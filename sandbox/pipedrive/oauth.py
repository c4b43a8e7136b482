"""OAuth 2.0 authorization-code flow of the emulated Pipedrive (pipedrive-api.md §1.2)."""

import base64
import binascii
import secrets

from sandbox import clock, faults
from sandbox.pipedrive.models import OAuthApp, OAuthGrant, User

CODE_SECONDS = 5 * 60  # "code expires in 5 minutes"
ACCESS_SECONDS = 60 * 60  # access token "expires after 60 minutes"
REFRESH_SECONDS = 60 * 24 * 3600  # refresh token: 60 days unused, reset on each use


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def find_app(client_id: str | None, redirect_uri: str | None) -> OAuthApp:
    app = OAuthApp.objects.filter(client_id=client_id or "").first()
    if app is None:
        raise OAuthError(400, "invalid_client", "Unknown client_id")
    if redirect_uri and redirect_uri != app.redirect_uri:
        raise OAuthError(400, "invalid_request", "redirect_uri does not match the app's callback")
    return app


def issue_code(app: OAuthApp, user: User, redirect_uri: str) -> str:
    code = secrets.token_urlsafe(24)
    OAuthGrant.objects.create(
        app=app,
        user=user,
        redirect_uri=redirect_uri or app.redirect_uri,
        code=code,
        code_expires_at=clock.now() + clock.duration(CODE_SECONDS),
    )
    return code


def client_from_request(request) -> OAuthApp:
    """Basic client auth (recommended) or client_id/client_secret in the body."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "Malformed Basic credentials") from None
    else:
        client_id, secret = request.POST.get("client_id", ""), request.POST.get("client_secret", "")
    app = OAuthApp.objects.filter(client_id=client_id).first()
    if app is None or not secrets.compare_digest(app.client_secret, secret):
        raise OAuthError(401, "invalid_client", "Invalid client credentials")
    return app


def _tokens(grant: OAuthGrant, api_domain: str) -> dict:
    now = clock.now()
    grant.access_token = f"{grant.user.company_id}:{grant.user_id}:{secrets.token_hex(32)}"
    grant.access_expires_at = now + clock.duration(ACCESS_SECONDS)
    if not grant.refresh_token:
        grant.refresh_token = f"{grant.user.company_id}:{grant.user_id}:{secrets.token_hex(24)}"
    grant.refresh_expires_at = now + clock.duration(REFRESH_SECONDS)
    grant.save()
    return {
        "access_token": grant.access_token,
        "token_type": "Bearer",
        "refresh_token": grant.refresh_token,  # the same one on every refresh: no rotation
        "scope": grant.app.scope,
        "expires_in": ACCESS_SECONDS - 1,
        "api_domain": api_domain,
    }


def exchange(app: OAuthApp, params, api_domain: str) -> dict:
    grant_type = params.get("grant_type")
    now = clock.now()
    if faults.get("pipedrive").revoke_tokens:
        raise OAuthError(400, "invalid_grant", "Token revoked (sandbox fault switch)")
    if grant_type == "authorization_code":
        grant = (
            OAuthGrant.objects.select_related("user", "app")
            .filter(app=app, code=params.get("code") or "")
            .first()
        )
        if grant is None or grant.code_expires_at < now:
            raise OAuthError(400, "invalid_grant", "Invalid or expired authorization code")
        if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
        grant.code = None  # single use
        return _tokens(grant, api_domain)
    if grant_type == "refresh_token":
        grant = (
            OAuthGrant.objects.select_related("user", "app")
            .filter(app=app, refresh_token=params.get("refresh_token") or "", revoked=False)
            .first()
        )
        if grant is None or grant.refresh_expires_at < now:
            raise OAuthError(400, "invalid_grant", "Invalid or expired refresh token")
        return _tokens(grant, api_domain)
    raise OAuthError(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
