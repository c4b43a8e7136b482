"""Token refresh (with `responses`): once under concurrency, lost answers, invalid_grant, API token 401."""

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
import responses
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from connector.connections import oauth
from connector.errors import ConnectionBroken
from connector.models import ConnectionStatus, OAuthState, XeroConnection
from tests.connector.conftest import ALL_SECRETS, PD_REFRESH, XERO_REFRESH

XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
PD_TOKEN_URL = "https://oauth.pipedrive.com/oauth/token"


@pytest.fixture(autouse=True)
def real_service_urls(settings):
    settings.XERO_IDENTITY_URL = "https://identity.xero.com"
    settings.PIPEDRIVE_OAUTH_URL = "https://oauth.pipedrive.com"


def xero_token_answer(n=2):
    return {
        "access_token": f"xero-access-token-VALUE-000{n}",
        "refresh_token": f"xero-refresh-token-VALUE-000{n}",
        "expires_in": 1800,
        "token_type": "Bearer",
        "scope": "offline_access accounting.contacts.read",
    }


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_ten_threads_with_an_expired_token_refresh_exactly_once(xero_connection):
    def slow_token_endpoint(request):
        time.sleep(0.05)  # a real endpoint takes time: the other threads arrive while it answers
        return 200, {}, json.dumps(xero_token_answer())

    responses.add_callback(responses.POST, XERO_TOKEN_URL, callback=slow_token_endpoint)
    tokens, errors = [], []
    start = threading.Barrier(10)

    def worker():
        try:
            start.wait()
            row = XeroConnection.objects.get(pk=xero_connection.pk)
            tokens.append(oauth.xero_token_provider(row).get_token())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(responses.calls) == 1
    assert "refresh_token=" + XERO_REFRESH in responses.calls[0].request.body
    assert tokens == ["xero-access-token-VALUE-0002"] * 10
    row = XeroConnection.objects.get(pk=xero_connection.pk)
    assert row.refresh_token == "xero-refresh-token-VALUE-0002"
    assert row.previous_refresh_token == XERO_REFRESH and row.status == ConnectionStatus.ACTIVE


@responses.activate
def test_a_fresh_token_is_not_refreshed(xero_connection):
    xero_connection.expires_at = timezone.now() + timedelta(minutes=20)
    xero_connection.save()
    assert oauth.xero_token_provider(xero_connection).get_token() == xero_connection.access_token
    assert len(responses.calls) == 0


@responses.activate
def test_a_lost_refresh_answer_is_recovered_with_the_old_token(xero_connection):
    responses.post(XERO_TOKEN_URL, body=requests.ConnectionError("connection reset after sending"))
    responses.post(XERO_TOKEN_URL, json=xero_token_answer())

    token = oauth.xero_token_provider(xero_connection).get_token()

    assert token == "xero-access-token-VALUE-0002"
    assert len(responses.calls) == 2
    # Both attempts presented the same (old) refresh token: Xero's grace answers the same successor.
    assert all("refresh_token=" + XERO_REFRESH in call.request.body for call in responses.calls)
    xero_connection.refresh_from_db()
    assert xero_connection.refresh_token == "xero-refresh-token-VALUE-0002"
    assert xero_connection.previous_refresh_grace_until > timezone.now() + timedelta(minutes=29)


@responses.activate
def test_invalid_grant_marks_the_connection_broken_naming_the_admin_page(
    xero_connection, mailoutbox, settings
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    responses.post(XERO_TOKEN_URL, status=400, json={"error": "invalid_grant"})

    with pytest.raises(ConnectionBroken) as caught:
        oauth.xero_token_provider(xero_connection).get_token()

    xero_connection.refresh_from_db()
    assert xero_connection.status == ConnectionStatus.BROKEN
    assert f"/admin/connector/xeroconnection/{xero_connection.pk}/change/" in xero_connection.last_error
    assert "invalid_grant" in xero_connection.last_error
    assert caught.value.admin_url.endswith(f"/admin/connector/xeroconnection/{xero_connection.pk}/change/")
    assert len(mailoutbox) == 1 and XERO_REFRESH not in mailoutbox[0].body
    # A broken connection is not retried against Xero.
    with pytest.raises(ConnectionBroken):
        oauth.xero_token_provider(xero_connection).get_token()
    assert len(responses.calls) == 1


@responses.activate
def test_unauthorized_forces_one_refresh(xero_connection):
    xero_connection.expires_at = timezone.now() + timedelta(minutes=20)
    xero_connection.save()
    responses.post(XERO_TOKEN_URL, json=xero_token_answer(3))
    assert oauth.xero_token_provider(xero_connection).on_unauthorized() == "xero-access-token-VALUE-0003"
    assert len(responses.calls) == 1


@responses.activate
def test_pipedrive_refresh_rereads_api_domain(pipedrive_oauth_connection):
    responses.post(
        PD_TOKEN_URL,
        json={
            "access_token": "pd-access-2",
            "refresh_token": "pd-refresh-2",
            "expires_in": 3599,
            "api_domain": "https://new.pipedrive.com",
            "scope": "base,deals:full",
        },
    )
    assert oauth.pipedrive_token_provider(pipedrive_oauth_connection).get_token() == "pd-access-2"
    pipedrive_oauth_connection.refresh_from_db()
    assert pipedrive_oauth_connection.api_domain == "https://new.pipedrive.com"
    assert "refresh_token=" + PD_REFRESH in responses.calls[0].request.body
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_pipedrive_api_token_401_marks_broken_recommending_oauth(pipedrive_api_token_connection):
    provider = oauth.pipedrive_token_provider(pipedrive_api_token_connection)
    assert provider.get_token() == pipedrive_api_token_connection.api_token
    with pytest.raises(ConnectionBroken):
        provider.on_unauthorized()
    pipedrive_api_token_connection.refresh_from_db()
    assert pipedrive_api_token_connection.status == ConnectionStatus.BROKEN
    assert "regenerated" in pipedrive_api_token_connection.last_error
    assert "OAuth" in pipedrive_api_token_connection.last_error


def test_state_is_single_use_and_unknown_state_is_rejected(db):
    row, challenge = oauth.new_state("xero", client_id="c", client_secret="s", redirect_uri="https://x/cb/")
    assert len(challenge) == 43
    assert oauth.consume_state("xero", row.state).pk == row.pk
    with pytest.raises(oauth.BadState):
        oauth.consume_state("xero", row.state)
    with pytest.raises(oauth.BadState):
        oauth.consume_state("xero", "forged")
    expired, _ = oauth.new_state("xero", client_id="c", client_secret="s", redirect_uri="https://x/cb/")
    OAuthState.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(oauth.BadState):
        oauth.consume_state("xero", expired.state)


def test_raw_rows_hold_no_plaintext_secret(
    xero_connection, pipedrive_api_token_connection, pipedrive_oauth_connection
):
    with db_connection.cursor() as cursor:
        dump = []
        for table in ("connector_xeroconnection", "connector_pipedriveconnection"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            dump.extend(str(value) for row in cursor.fetchall() for value in row)
    text = "\n".join(dump)
    assert "Demo Org" in text  # the dump is real
    for secret in ALL_SECRETS:
        assert secret not in text
