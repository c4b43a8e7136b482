"""Fixtures of the mapping tests: a sync pair between two (fake) connections."""

import pytest

from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection


@pytest.fixture
def pair(db):
    xero = XeroConnection.objects.create(
        tenant_id="tenant-m", tenant_name="Mapping Org", client_id="c", status=ConnectionStatus.ACTIVE
    )
    pipedrive = PipedriveConnection.objects.create(
        company_id=77,
        company_name="Mapping Co",
        api_domain="https://mapping.pipedrive.example",
        auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token="mapping-api-token-0001",
        status=ConnectionStatus.ACTIVE,
    )
    return SyncPair.objects.create(name="Mapping pair", xero_connection=xero, pipedrive_connection=pipedrive)


@pytest.fixture
def mapping_defaults(db):
    """The default rows of migration mapping/0002, put back when a transactional test's flush removed them."""
    import importlib

    from django.apps import apps

    importlib.import_module("mapping.migrations.0002_default_rules").install(apps, None)
