"""Sandbox Pipedrive OAuth: consent page, code exchange with Basic client auth, refresh, api_domain,
Bearer calls with the OAuth burst limit, expiry on the sandbox clock; and the seed command."""

import base64
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command

from sandbox import clock, faults
from sandbox.pipedrive import services
from sandbox.pipedrive.models import OAuthApp, User
from tests.sandbox.test_pipedrive_contract import (  # noqa: F401 (fixtures and the URLconf marker)
    PipedriveApi,
    company_fixture,
    pytestmark,
    validate_oauth_token_call,
)

OAUTH = "/sandbox/pipedrive/oauth"
BASIC = (
    "Basic " + base64.b64encode(f"{services.DEMO_CLIENT_ID}:{services.DEMO_CLIENT_SECRET}".encode()).decode()
)


@pytest.fixture(autouse=True)
def _fresh_clock():
    clock.reset()
    yield
    clock.reset()


def authorize(client, decision="allow", state="xyz"):
    app = OAuthApp.objects.get(client_id=services.DEMO_CLIENT_ID)
    params = {"client_id": app.client_id, "redirect_uri": app.redirect_uri, "state": state}
    page = client.get(f"{OAUTH}/authorize", params)
    assert page.status_code == 200 and b"Allow" in page.content
    user = User.objects.get(api_token=services.DEMO_API_TOKEN)
    answer = client.post(
        f"{OAUTH}/authorize?{'&'.join(f'{k}={v}' for k, v in params.items())}",
        {"decision": decision, "user_id": user.id},
    )
    assert answer.status_code == 302
    location = urlparse(answer["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == app.redirect_uri
    return parse_qs(location.query)


def exchange(client, **form):
    response = client.post(f"{OAUTH}/token", form, headers={"Authorization": BASIC})
    if response.status_code == 200:
        validate_oauth_token_call(form, {"Authorization": BASIC}, response)
    return response


def test_code_exchange_refresh_and_bearer_calls(company, client):
    query = authorize(client)
    assert query["state"] == ["xyz"]
    tokens = exchange(
        client,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=OAuthApp.objects.get().redirect_uri,
    )
    assert tokens.status_code == 200, tokens.content
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["api_domain"] == "http://testserver/sandbox/pipedrive"
    assert {"access_token", "refresh_token", "scope"} <= set(body)
    # A code is single use.
    assert exchange(client, grant_type="authorization_code", code=query["code"][0]).status_code == 400

    api = PipedriveApi(client, bearer=body["access_token"])
    created = api.post(
        "/api/v2/organizations", {"name": "Via OAuth"}, valid_request=False
    )  # spec lists api_key only
    assert created.status_code == 200
    assert created["x-ratelimit-limit"] == "160"  # Growth, OAuth token
    assert "x-daily-requests-left" not in created  # API-token requests only

    refreshed = exchange(client, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert refreshed["refresh_token"] == body["refresh_token"]  # no rotation
    assert refreshed["access_token"] != body["access_token"]
    assert api.get("/api/v2/organizations", valid_request=False).status_code == 401  # the old one is replaced
    api.bearer = refreshed["access_token"]
    assert api.get("/api/v2/organizations", valid_request=False).status_code == 200

    clock.advance(3601)  # the access token lasts 60 minutes
    assert api.get("/api/v2/organizations", valid_request=False).status_code == 401


def test_denied_consent_and_bad_client_credentials(company, client):
    assert authorize(client, decision="deny")["error"] == ["user_denied"]
    code = authorize(client)["code"][0]
    wrong = client.post(
        f"{OAUTH}/token",
        {"grant_type": "authorization_code", "code": code},
        headers={"Authorization": "Basic " + base64.b64encode(b"sandbox-pipedrive-client:nope").decode()},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # Credentials in the body are accepted too ("not recommended").
    in_body = client.post(
        f"{OAUTH}/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": services.DEMO_CLIENT_ID,
            "client_secret": services.DEMO_CLIENT_SECRET,
        },
    )
    assert in_body.status_code == 200


def test_code_expires_after_five_minutes_and_revoke_switch(company, client):
    code = authorize(client)["code"][0]
    clock.advance(301)
    assert exchange(client, grant_type="authorization_code", code=code).json()["error"] == "invalid_grant"
    clock.reset()
    tokens = exchange(client, grant_type="authorization_code", code=authorize(client)["code"][0]).json()
    faults.set_faults("pipedrive", revoke_tokens=True)
    assert (
        PipedriveApi(client, bearer=tokens["access_token"])
        .get("/api/v2/deals", valid_request=False)
        .status_code
        == 401
    )
    assert (
        exchange(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400
    )


def test_seed_command_creates_the_demo_company_once(db):
    out = StringIO()
    call_command("sandbox_pipedrive_seed", stdout=out)
    call_command("sandbox_pipedrive_seed", stdout=StringIO())
    assert services.DEMO_API_TOKEN in out.getvalue()
    company = services.ensure_demo_company()
    assert company.pipelines.count() == 1
    assert [s.name for s in company.pipelines.get().stages.all()] == [
        "Invoice drafted",
        "Invoice sent",
        "Partly paid",
        "Paid",
    ]
    assert User.objects.filter(company=company).count() == 1
