"""Scheduled refresh of quiet connections, the schedule itself, and log redaction."""

import logging
from datetime import timedelta

import responses
from django.utils import timezone
from django_q.models import Schedule

from connector import tasks
from connector.logging import RedactSecretsFilter, redact
from connector.models import XeroConnection
from tests.connector.conftest import XERO_ACCESS, XERO_REFRESH, XERO_SECRET


def test_the_refresh_schedule_exists(db):
    schedule = Schedule.objects.get(name="connector: refresh quiet connections")
    assert schedule.func == "connector.tasks.refresh_quiet_connections"


@responses.activate
def test_quiet_connections_are_refreshed_and_recent_ones_left_alone(xero_connection, settings):
    settings.XERO_IDENTITY_URL = "https://identity.xero.com"
    responses.post(
        "https://identity.xero.com/connect/token",
        json={"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 1800},
    )
    recent = XeroConnection.objects.create(
        tenant_id="tenant-2", client_id="c", status="active", last_refreshed_at=timezone.now()
    )
    XeroConnection.objects.filter(pk=xero_connection.pk).update(
        last_refreshed_at=timezone.now() - timedelta(days=20)
    )

    assert tasks.refresh_quiet_connections() == {"refreshed": 1, "failed": 0}
    xero_connection.refresh_from_db()
    assert xero_connection.refresh_token == "new-refresh"
    assert len(responses.calls) == 1
    recent.refresh_from_db()
    assert recent.access_token == ""


def test_redaction_of_tokens_in_messages_and_exceptions():
    text = (
        f"POST body refresh_token={XERO_REFRESH}&client_secret={XERO_SECRET} "
        f'headers {{"Authorization": "Bearer {XERO_ACCESS}"}} json {{"access_token": "{XERO_ACCESS}"}}'
    )
    cleaned = redact(text)
    for secret in (XERO_ACCESS, XERO_REFRESH, XERO_SECRET):
        assert secret not in cleaned
    assert "refresh_token=[redacted]" in cleaned

    # Names of this project's own secrets, with a prefix before the secret word.
    named = (
        '{"http_auth_password": "pw-SECRET-0001", "pipedrive_webhook_password": "pw-SECRET-0002"} '
        "xero_webhook_key=key-SECRET-0003 pipedrive_signing_secret: sig-SECRET-0004"
    )
    cleaned_named = redact(named)
    assert "SECRET" not in cleaned_named, cleaned_named
    assert '"http_auth_password": "[redacted]"' in cleaned_named

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call failed: %s", (text,), None)
    assert RedactSecretsFilter().filter(record)
    assert XERO_REFRESH not in record.getMessage() and "call failed" in record.getMessage()


PD_API = "https://acme.pipedrive.com"  # only Pipedrive's hosts get a token (connector/connections/hosts.py)
ME = {"success": True, "data": {"id": 7, "company_id": 70, "company_name": "Acme", "company_domain": "acme"}}


@responses.activate
def test_connecting_a_pipedrive_token_waits_out_a_rate_limit(db):
    from unittest import mock

    from connector.connections import services as connections

    responses.get(f"{PD_API}/api/v1/users/me", status=429, headers={"Retry-After": "2"})
    responses.get(f"{PD_API}/api/v1/users/me", json=ME)
    with mock.patch.object(connections.time, "sleep") as slept:
        conn = connections.connect_pipedrive_api_token("a" * 40, PD_API)
    assert slept.call_args_list == [mock.call(2.0)]
    assert conn.company_name == "Acme" and len(responses.calls) == 2


@responses.activate
def test_connecting_a_pipedrive_token_asks_again_after_a_passing_server_error(db):
    from unittest import mock

    from connector.connections import services as connections

    responses.get(f"{PD_API}/api/v1/users/me", status=503)
    responses.get(f"{PD_API}/api/v1/users/me", json=ME)
    with mock.patch.object(connections.time, "sleep") as slept:
        conn = connections.connect_pipedrive_api_token("a" * 40, PD_API)
    assert slept.call_args_list == [mock.call(1.0)]
    assert conn.company_name == "Acme" and len(responses.calls) == 2


@responses.activate
def test_connecting_a_pipedrive_token_asks_again_after_a_time_out(db):
    from unittest import mock

    import pytest
    import requests

    from connector.connections import services as connections
    from connector.errors import ConnectorError
    from connector.models import PipedriveConnection

    responses.get(f"{PD_API}/api/v1/users/me", body=requests.ReadTimeout("stalled"))
    responses.get(f"{PD_API}/api/v1/users/me", json=ME)
    with mock.patch.object(connections.time, "sleep") as slept:
        conn = connections.connect_pipedrive_api_token("a" * 40, PD_API)
    assert slept.call_count == 1 and conn.company_name == "Acme" and len(responses.calls) == 2

    # Time-outs every time: the last try's error is the admin's message, and nothing is saved.
    PipedriveConnection.objects.all().delete()
    responses.reset()
    responses.get(f"{PD_API}/api/v1/users/me", body=requests.ReadTimeout("stalled"))
    with mock.patch.object(connections.time, "sleep"), pytest.raises(ConnectorError, match="did not answer"):
        connections.connect_pipedrive_api_token("a" * 40, PD_API)
    assert len(responses.calls) == connections.ME_429_TRIES
    assert not PipedriveConnection.objects.exists()


@responses.activate
def test_a_lasting_pipedrive_rate_limit_says_to_try_again(db):
    from unittest import mock

    import pytest

    from connector.connections import services as connections
    from connector.errors import ConnectorError
    from connector.models import PipedriveConnection

    responses.get(f"{PD_API}/api/v1/users/me", status=429, headers={"Retry-After": "1"})
    with (
        mock.patch.object(connections.time, "sleep"),
        pytest.raises(ConnectorError, match="try connecting again"),
    ):
        connections.connect_pipedrive_api_token("a" * 40, PD_API)
    assert len(responses.calls) == connections.ME_429_TRIES
    assert not PipedriveConnection.objects.exists()
