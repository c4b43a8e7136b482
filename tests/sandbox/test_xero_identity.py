"""Sandbox Xero identity: consent page, code exchange with PKCE, token expiry, rotation and grace."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox import clock, faults
from tests.sandbox.conftest import (
    REDIRECT_URI,
    SANDBOX_URLS,
    SCOPE,
    XERO,
    authorize,
    pkce_pair,
    token_request,
)

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

AUTHORIZE = f"{XERO}/login/identity/connect/authorize"


def _query(response):
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_consent_page_lists_the_sandbox_organisations(client, xero_app, xero_orgs):
    page = client.get(
        AUTHORIZE,
        {
            "response_type": "code",
            "client_id": xero_app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": "abc",
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    for organisation in xero_orgs:
        assert organisation.name in html
        assert str(organisation.tenant_id) in html
    assert 'type="checkbox"' in html


def test_unknown_client_and_unregistered_redirect_are_refused_without_redirecting(
    client, xero_app, xero_orgs
):
    base = {"response_type": "code", "scope": SCOPE, "state": "s"}
    unknown = client.get(AUTHORIZE, {**base, "client_id": "NOPE", "redirect_uri": REDIRECT_URI})
    assert unknown.status_code == 400 and b"unauthorized_client" in unknown.content
    evil = client.get(
        AUTHORIZE, {**base, "client_id": xero_app.client_id, "redirect_uri": "https://evil.example/"}
    )
    assert evil.status_code == 400 and "Location" not in evil


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "launch.missiles"}, "invalid_scope"),
    ],
)
def test_bad_requests_go_back_to_the_app_with_the_error_and_state(client, xero_app, change, error):
    params = {
        "response_type": "code",
        "client_id": xero_app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "keep-me",
        **change,
    }
    response = client.get(AUTHORIZE, params)
    assert response.status_code == 302
    assert _query(response) == {"error": error, "state": "keep-me"}


def test_deny_answers_access_denied_with_state(client, xero_app, xero_orgs):
    params = {
        "response_type": "code",
        "client_id": xero_app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "s-9",
    }
    response = client.post(AUTHORIZE, {**params, "action": "deny", "tenant": [str(xero_orgs[0].tenant_id)]})
    assert response["Location"].startswith(REDIRECT_URI)
    assert _query(response) == {"error": "access_denied", "state": "s-9"}


def test_code_exchange_gives_xero_token_set_and_code_is_single_use(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs[:1], state="xyz")
    assert query["state"] == "xyz"
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI}
    response = token_request(client, xero_app, **form)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer"
    claims = _claims(body["access_token"])
    assert claims["client_id"] == xero_app.client_id
    assert claims["exp"] - claims["nbf"] == 1800
    assert "authentication_event_id" in claims
    assert _claims(body["id_token"])["aud"] == xero_app.client_id
    again = token_request(client, xero_app, **form)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


def test_client_credentials_in_the_body_work_and_a_wrong_secret_does_not(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs[:1])
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI}
    wrong = token_request(client, xero_app, secret="wrong", **form)
    assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_client"}
    body_auth = client.post(
        f"{XERO}/identity/connect/token",
        {**form, "client_id": xero_app.client_id, "client_secret": xero_app.client_secret},
    )
    assert body_auth.status_code == 200


def test_redirect_uri_must_match_the_authorize_request(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs[:1])
    response = token_request(
        client,
        xero_app,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri="https://other.example/",
    )
    assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}


def test_pkce_verifier_is_checked(client, xero_app, xero_orgs):
    verifier, challenge = pkce_pair()
    query = authorize(client, xero_app, xero_orgs[:1], challenge=challenge)
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI}
    assert token_request(client, xero_app, **form).json() == {"error": "invalid_grant"}  # no verifier
    wrong = token_request(client, xero_app, code_verifier=pkce_pair()[0], **form)
    assert wrong.json() == {"error": "invalid_grant"}
    # Failed attempts do not spend the code.
    assert token_request(client, xero_app, code_verifier=verifier, **form).status_code == 200


def test_code_expires_after_five_minutes(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs[:1])
    clock.advance(301)
    response = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    )
    assert response.json() == {"error": "invalid_grant"}


def test_access_token_expires_after_30_minutes(xero):
    assert xero.get("/Contacts").status_code == 200
    clock.advance(1799)
    assert xero.get("/Contacts").status_code == 200
    clock.advance(2)
    expired = xero.get("/Contacts")
    assert expired.status_code == 401
    # Xero names the cause, so a client knows to refresh rather than reconnect.
    assert expired.json()["Title"] == "Unauthorized"
    assert expired.json()["Detail"].startswith("TokenExpired: token expired at ")
    assert 'error="invalid_token"' in expired["WWW-Authenticate"]
    unknown = xero.get("/Contacts", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert unknown.json()["Detail"] == "AuthenticationUnsuccessful"


def _refresh(xero, token):
    return token_request(xero.client, xero.app, grant_type="refresh_token", refresh_token=token)


def test_refresh_rotates_and_old_token_works_only_within_the_30_minute_grace(xero):
    first = xero.tokens["refresh_token"]
    rotated = _refresh(xero, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    assert rotated.json()["access_token"] != xero.tokens["access_token"]

    # The answer was "lost": the old token is retried within the grace and yields the same successor.
    clock.advance(29 * 60)
    retry = _refresh(xero, first)
    assert retry.status_code == 200 and retry.json()["refresh_token"] == second

    clock.advance(2 * 60)  # 31 minutes after the rotation
    late = _refresh(xero, first)
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}

    # The successor still works, and rotates in turn.
    third = _refresh(xero, second)
    assert third.status_code == 200 and third.json()["refresh_token"] not in (first, second)
    new_access = third.json()["access_token"]
    assert xero.get("/Contacts", HTTP_AUTHORIZATION=f"Bearer {new_access}").status_code == 200


def test_refresh_token_expires_after_60_days_unused(xero):
    clock.advance(60 * 24 * 3600 + 1)
    assert _refresh(xero, xero.tokens["refresh_token"]).json() == {"error": "invalid_grant"}


def test_unknown_refresh_token_is_invalid_grant(xero):
    response = _refresh(xero, "not-a-token")
    assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}


def test_time_scale_shortens_token_lifetimes(client, settings, xero_app, xero_orgs):
    settings.SANDBOX_TIME_SCALE = 60
    query = authorize(client, xero_app, xero_orgs[:1])
    response = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    )
    assert response.json()["expires_in"] == 30  # Xero's 30 minutes as 30 real seconds


def test_revocation_ends_the_consent(xero, xero_orgs):
    response = xero.client.post(
        f"{XERO}/identity/connect/revocation",
        {
            "token": xero.tokens["refresh_token"],
            "client_id": xero.app.client_id,
            "client_secret": xero.app.client_secret,
        },
    )
    assert response.status_code == 200
    assert _refresh(xero, xero.tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero.get("/Contacts").status_code == 401


def test_connections_list_and_delete(xero, xero_orgs):
    listed = xero.client.get(
        f"{XERO}/api/connections", HTTP_AUTHORIZATION=f"Bearer {xero.tokens['access_token']}"
    )
    assert listed.status_code == 200
    rows = listed.json()
    assert {r["tenantId"] for r in rows} == {str(o.tenant_id) for o in xero_orgs}
    assert {r["tenantType"] for r in rows} == {"ORGANISATION"}
    assert {r["tenantName"] for r in rows} == {o.name for o in xero_orgs}
    assert len({r["authEventId"] for r in rows}) == 1
    assert _claims(xero.tokens["access_token"])["authentication_event_id"] == rows[0]["authEventId"]

    headers = {"HTTP_AUTHORIZATION": f"Bearer {xero.tokens['access_token']}"}
    gone = next(r for r in rows if r["tenantId"] == xero.tenant_id)
    assert xero.client.delete(f"{XERO}/api/connections/{gone['id']}", **headers).status_code == 204
    assert xero.client.delete(f"{XERO}/api/connections/{gone['id']}", **headers).status_code == 404
    remaining = xero.client.get(f"{XERO}/api/Connections", **headers).json()
    assert [r["tenantId"] for r in remaining] == [str(xero_orgs[1].tenant_id)]
    # The disconnected tenant is now forbidden for this token.
    assert xero.get("/Contacts").status_code == 403


def test_reconnecting_keeps_created_date_and_moves_updated_date(client, xero, xero_orgs):
    clock.advance(3600)
    query = authorize(client, xero.app, xero_orgs[:1])
    tokens = token_request(
        client, xero.app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    rows = client.get(f"{XERO}/api/connections", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert len(rows) == 1
    assert rows[0]["createdDateUtc"] != rows[0]["updatedDateUtc"]


def test_revoked_token_fault_switch(xero):
    faults.set_faults("xero", revoke_tokens=True)
    assert xero.get("/Contacts").status_code == 401
    assert _refresh(xero, xero.tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    faults.set_faults("xero", revoke_tokens=False)
    assert xero.get("/Contacts").status_code == 200
