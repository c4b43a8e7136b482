"""Shared fixtures of the connection tests: connection rows with known (fake) secrets."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import ConnectionStatus, PipedriveConnection, XeroConnection

XERO_ACCESS = "xero-access-token-VALUE-0001"
XERO_REFRESH = "xero-refresh-token-VALUE-0001"
XERO_SECRET = "xero-client-secret-VALUE"
PD_API_TOKEN = "pipedrive-api-token-VALUE-0001"
PD_ACCESS = "pipedrive-access-token-VALUE-0001"
PD_REFRESH = "pipedrive-refresh-token-VALUE-0001"
PD_SECRET = "pipedrive-client-secret-VALUE"
ALL_SECRETS = [XERO_ACCESS, XERO_REFRESH, XERO_SECRET, PD_API_TOKEN, PD_ACCESS, PD_REFRESH, PD_SECRET]


@pytest.fixture
def xero_connection(db):
    """An active Xero connection whose access token has expired."""
    return XeroConnection.objects.create(
        tenant_id="tenant-1",
        tenant_name="Demo Org",
        client_id="client-1",
        client_secret=XERO_SECRET,
        access_token=XERO_ACCESS,
        refresh_token=XERO_REFRESH,
        expires_at=timezone.now() - timedelta(minutes=1),
        status=ConnectionStatus.ACTIVE,
        secrets_set_at=timezone.now(),
    )


@pytest.fixture
def pipedrive_api_token_connection(db):
    return PipedriveConnection.objects.create(
        company_id=1,
        company_name="Demo Co",
        api_domain="https://demo.pipedrive.com",
        auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token=PD_API_TOKEN,
        status=ConnectionStatus.ACTIVE,
    )


@pytest.fixture
def pipedrive_oauth_connection(db):
    return PipedriveConnection.objects.create(
        company_id=2,
        company_name="OAuth Co",
        api_domain="https://old.pipedrive.com",
        auth_type=PipedriveConnection.AuthType.OAUTH,
        access_token=PD_ACCESS,
        refresh_token=PD_REFRESH,
        client_id="pd-client",
        client_secret=PD_SECRET,
        expires_at=timezone.now() - timedelta(minutes=1),
        status=ConnectionStatus.ACTIVE,
    )


# The webhook tests' pair (known webhook secrets) and fake sync service.
from tests.connector.webhook_helpers import fake_sync, pair  # noqa: E402, F401
