"""A Pipedrive token goes only to Pipedrive: ``https://<company>.pipedrive.com``, or the sandbox's own
address while the sandbox is on. Every other address (a form's, a token answer's, a stored one) is
refused before any request, with the same text as an address that did not answer."""

import secrets
from datetime import timedelta

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone

from connector.connections import hosts, oauth
from connector.connections import services as connections
from connector.errors import ConnectorError
from connector.models import ConnectionStatus, OAuthState, PipedriveConnection

pytestmark = pytest.mark.django_db

ME = {"success": True, "data": {"id": 7, "company_id": 70, "company_name": "Acme", "company_domain": "acme"}}
SANDBOX_PIPEDRIVE = "http://127.0.0.1:8765/sandbox/pipedrive"
FOREIGN = [
    "http://127.0.0.1:9",
    "http://127.0.0.1:8000",
    "https://127.0.0.1",
    "https://evil.example",
    "https://x.pipedrive.com.evil.example",
    "https://evil.example/.pipedrive.com",
    "https://acme.pipedrive.com@evil.example",
    "https://acme.pipedrive.com:8443",
    "http://acme.pipedrive.com",
    "https://a.b.pipedrive.com",
    "https://acme.pipedrive.com/api",
    "https://-acme.pipedrive.com",
    "javascript:alert(1)",
    "javascript://acme.pipedrive.com/%0aalert(1)",
]


@pytest.mark.parametrize("value", FOREIGN)
def test_foreign_hosts_are_refused(value):
    with pytest.raises(hosts.RefusedHost):
        hosts.pipedrive_base(value)


@pytest.mark.parametrize(
    ("value", "base"),
    [
        ("https://acme.pipedrive.com", "https://acme.pipedrive.com"),
        ("https://ACME.pipedrive.com/", "https://acme.pipedrive.com"),
        ("https://my-co-2.pipedrive.com", "https://my-co-2.pipedrive.com"),
        ("https://api.pipedrive.com", "https://api.pipedrive.com"),
    ],
)
def test_pipedrive_company_hosts_are_accepted(value, base):
    assert hosts.pipedrive_base(value) == base


def test_the_sandbox_address_only_while_the_sandbox_is_on(settings):
    settings.PIPEDRIVE_API_URL = SANDBOX_PIPEDRIVE
    settings.SANDBOX_ENABLED = False
    with pytest.raises(hosts.RefusedHost):
        hosts.pipedrive_base(SANDBOX_PIPEDRIVE)
    settings.SANDBOX_ENABLED = True
    assert hosts.pipedrive_base(SANDBOX_PIPEDRIVE) == SANDBOX_PIPEDRIVE
    with pytest.raises(hosts.RefusedHost):  # the sandbox's host, another path: still refused
        hosts.pipedrive_base("http://127.0.0.1:8765/admin")


@responses.activate
def test_a_sandbox_address_is_not_called_with_the_sandbox_off(settings):
    settings.PIPEDRIVE_API_URL = SANDBOX_PIPEDRIVE
    settings.SANDBOX_ENABLED = False
    with pytest.raises(ConnectorError):
        connections.connect_pipedrive_api_token("t" * 40, "")
    with pytest.raises(ConnectorError):
        connections.connect_pipedrive_api_token("t" * 40, SANDBOX_PIPEDRIVE)
    assert len(responses.calls) == 0 and not PipedriveConnection.objects.exists()


def post_token(client, api_domain):
    return client.post(
        reverse("connector:pipedrive-start"),
        {"kind": "api_token", "api_token": "t" * 40, "api_domain": api_domain},
    )


def form_errors(page) -> list[str]:
    return [str(e) for errors in page.context["token_form"].errors.values() for e in errors]


@responses.activate
def test_finance_cannot_point_the_token_form_anywhere(client, finance_user, pipedrive_api_token_connection):
    client.force_login(finance_user)
    before = list(PipedriveConnection.objects.values())
    assert post_token(client, "http://127.0.0.1:9").status_code == 403
    assert len(responses.calls) == 0
    assert list(PipedriveConnection.objects.values()) == before


@pytest.mark.parametrize("value", ["http://127.0.0.1:9", *FOREIGN])
@responses.activate
def test_the_integration_admin_cannot_send_a_token_to_a_foreign_host(
    client, integration_admin, pipedrive_api_token_connection, value
):
    client.force_login(integration_admin)
    before = list(PipedriveConnection.objects.values())
    page = post_token(client, value)
    assert page.status_code == 200 and form_errors(page)
    assert len(responses.calls) == 0  # nothing was sent anywhere
    assert list(PipedriveConnection.objects.values()) == before


@responses.activate
def test_a_pipedrive_company_host_is_connected(client, integration_admin):
    responses.get("https://acme.pipedrive.com/api/v1/users/me", json=ME)
    client.force_login(integration_admin)
    page = post_token(client, "https://acme.pipedrive.com")
    assert page.status_code == 302
    conn = PipedriveConnection.objects.get()
    assert conn.api_domain == "https://acme.pipedrive.com" and conn.status == ConnectionStatus.ACTIVE
    assert [c.request.url for c in responses.calls] == ["https://acme.pipedrive.com/api/v1/users/me"]


@responses.activate
def test_a_refused_host_reads_like_one_that_did_not_answer(client, integration_admin):
    client.force_login(integration_admin)
    refused = form_errors(post_token(client, "http://127.0.0.1:9"))
    responses.get(
        "https://acme.pipedrive.com/api/v1/users/me",
        body=requests.ConnectionError("[Errno 111] Connection refused"),
    )
    unreachable = form_errors(post_token(client, "https://acme.pipedrive.com"))
    responses.replace(responses.GET, "https://acme.pipedrive.com/api/v1/users/me", body="<html>hi</html>")
    not_json = post_token(client, "https://acme.pipedrive.com")
    assert refused == unreachable == form_errors(not_json) == [hosts.UNREACHABLE]
    for leak in (b"Connection refused", b"Expecting value", b"Errno"):
        assert leak not in not_json.content
    assert not PipedriveConnection.objects.exists()


@responses.activate
def test_a_stored_foreign_host_never_gets_the_token(pipedrive_api_token_connection):
    PipedriveConnection.objects.filter(pk=pipedrive_api_token_connection.pk).update(
        api_domain="http://127.0.0.1:9"
    )
    pipedrive_api_token_connection.refresh_from_db()
    with pytest.raises(hosts.RefusedHost):
        connections.pipedrive_client(pipedrive_api_token_connection)
    result = connections.check_pipedrive(pipedrive_api_token_connection)
    assert not result.ok and hosts.UNREACHABLE in str(result)
    assert len(responses.calls) == 0


def pipedrive_state(user_id=None) -> OAuthState:
    return OAuthState.objects.create(
        state=secrets.token_urlsafe(16),
        service="pipedrive",
        code_verifier="v" * 43,
        client_id="pd-client",
        client_secret="pd-secret",
        redirect_uri="https://app.example/connect/pipedrive/callback/",
        user_id=user_id,
        expires_at=timezone.now() + timedelta(minutes=10),
    )


@responses.activate
def test_an_oauth_answer_naming_a_foreign_host_is_refused(client, integration_admin):
    responses.post(
        oauth.pipedrive_token_url(),
        json={
            "access_token": "a",
            "refresh_token": "r",
            "expires_in": 3600,
            "api_domain": "http://127.0.0.1:9",
        },
    )
    row = pipedrive_state(integration_admin.pk)
    client.force_login(integration_admin)
    page = client.get(reverse("connector:pipedrive-callback"), {"state": row.state, "code": "c"}, follow=True)
    assert [str(m) for m in page.context["messages"]] == [f"Connecting Pipedrive failed: {hosts.UNREACHABLE}"]
    assert [c.request.url for c in responses.calls] == [oauth.pipedrive_token_url()]  # not users/me
    assert not PipedriveConnection.objects.exists()


@responses.activate
def test_a_refresh_naming_a_foreign_host_keeps_the_known_one(pipedrive_oauth_connection):
    responses.post(
        oauth.pipedrive_token_url(),
        json={
            "access_token": "new",
            "refresh_token": "r2",
            "expires_in": 3600,
            "api_domain": "https://evil.example",
        },
    )
    conn = oauth.refresh_pipedrive(pipedrive_oauth_connection.pk)
    assert conn.api_domain == "https://old.pipedrive.com"
    conn.refresh_from_db()
    assert conn.api_domain == "https://old.pipedrive.com" and conn.access_token == "new"

    responses.replace(
        responses.POST,
        oauth.pipedrive_token_url(),
        json={
            "access_token": "n3",
            "refresh_token": "r3",
            "expires_in": 3600,
            "api_domain": "https://new.pipedrive.com",
        },
    )
    assert oauth.refresh_pipedrive(conn.pk, force=True).api_domain == "https://new.pipedrive.com"


@responses.activate
def test_the_admin_form_refuses_a_foreign_host_and_a_domain_with_a_scheme(
    client, integration_admin, pipedrive_api_token_connection
):
    client.force_login(integration_admin)
    url = reverse("admin:connector_pipedriveconnection_change", args=[pipedrive_api_token_connection.pk])
    form = {"company_name": "Demo Co", "company_domain": "demo", "api_domain": "http://127.0.0.1:9"}
    assert client.post(url, form).status_code == 200  # the form again, with the error
    assert (
        client.post(
            url, {**form, "api_domain": "https://demo.pipedrive.com", "company_domain": "javascript://x"}
        ).status_code
        == 200
    )
    pipedrive_api_token_connection.refresh_from_db()
    assert pipedrive_api_token_connection.api_domain == "https://demo.pipedrive.com"
    assert pipedrive_api_token_connection.company_domain == ""
    answer = client.post(url, {**form, "api_domain": "https://other.pipedrive.com"})
    assert answer.status_code == 302
    pipedrive_api_token_connection.refresh_from_db()
    assert pipedrive_api_token_connection.api_domain == "https://other.pipedrive.com"
    assert len(responses.calls) == 0
