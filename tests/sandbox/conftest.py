"""Fixtures shared by the sandbox tests."""

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import include, path

from sandbox import clock

# Test modules use this as their own URLconf (``urlpatterns = SANDBOX_URLS`` plus
# ``pytest.mark.urls(__name__)``): the sandbox is mounted only when SANDBOX_ENABLED is on.
SANDBOX_URLS = [path("sandbox/", include("sandbox.urls"))]

XERO = "/sandbox/xero"
XERO_API = f"{XERO}/api/api.xro/2.0"
REDIRECT_URI = "https://app.example/connect/xero/callback/"
SCOPE = "openid profile email offline_access accounting.contacts accounting.transactions"


def control_headers() -> dict[str, str]:
    """The header a script sends to use the control endpoints (config/settings_test.py sets the token)."""
    return {"X-Sandbox-Token": settings.SANDBOX_CONTROL_TOKEN}


@pytest.fixture
def client():
    """The test client as a script that holds the sandbox's control token (sandbox/control.py):
    every request carries ``X-Sandbox-Token``, which the emulated APIs ignore."""
    return Client(headers=control_headers())


@pytest.fixture
def anonymous_client():
    return Client()


@pytest.fixture(autouse=True)
def _sandbox_clock_back_to_now():
    """Tests move the sandbox clock; put it back so the next test starts at real time."""
    yield
    clock.reset()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(client, app, organisations, scope=SCOPE, state="st-1", challenge="", redirect_uri=REDIRECT_URI):
    """Walk the consent page as a user who allows access; returns the redirect's query."""
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = client.get(f"{XERO}/login/identity/connect/authorize", params)
    assert page.status_code == 200, page.content
    response = client.post(
        f"{XERO}/login/identity/connect/authorize",
        {**params, "action": "allow", "tenant": [str(o.tenant_id) for o in organisations]},
    )
    assert response.status_code == 302, response.content
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def token_request(client, app, secret=None, **form):
    return client.post(
        f"{XERO}/identity/connect/token",
        form,
        HTTP_AUTHORIZATION="Basic "
        + base64.b64encode(f"{app.client_id}:{secret or app.client_secret}".encode()).decode(),
    )


@dataclass
class XeroSession:
    """A connected app: its token set and a tenant, with helpers for API calls."""

    client: object
    app: object
    tokens: dict
    tenant_id: str

    def headers(self, tenant_id=None, token=None) -> dict:
        return {
            "HTTP_AUTHORIZATION": f"Bearer {token or self.tokens['access_token']}",
            "HTTP_XERO_TENANT_ID": tenant_id or self.tenant_id,
            "HTTP_ACCEPT": "application/json",
        }

    def get(self, path, params=None, **extra):
        return self.client.get(f"{XERO_API}{path}", params or {}, **{**self.headers(), **extra})

    def send(self, method, path, body, **extra):
        call = getattr(self.client, method.lower())
        return call(f"{XERO_API}{path}", body, content_type="application/json", **{**self.headers(), **extra})


@pytest.fixture
def xero_app(db):
    from sandbox.xero import services

    return services.create_app("Test connector", [REDIRECT_URI])


@pytest.fixture
def xero_orgs(db):
    from sandbox.xero import services

    return [services.create_organisation("Acme Ltd"), services.create_organisation("Beta Traders")]


@pytest.fixture
def xero(client, xero_app, xero_orgs):
    """The test app connected to both organisations; calls go to the first."""
    query = authorize(client, xero_app, xero_orgs)
    response = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    )
    assert response.status_code == 200, response.content
    return XeroSession(client, xero_app, response.json(), str(xero_orgs[0].tenant_id))
