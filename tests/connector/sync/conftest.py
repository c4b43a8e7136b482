"""Fixtures of the sync tests: a SyncPair whose connections talk to the sandboxes on the live server.

``sync_pair``: an enabled SyncPair joining an active XeroConnection (a sandbox app's consent to
one organisation, with a live access token) and an active PipedriveConnection (the sandbox demo
company's API token, ``api_domain`` = the live server's sandbox Pipedrive). ``sandbox``: a
``SyncSandbox`` to write Xero records, read Pipedrive records and read the call counters.
Test modules must use ``SYNC_URLS``/``SYNC_MARKS`` from ``tests.connector.sync.harness``.
"""

import importlib
from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection
from sandbox import counters, faults
from sandbox.pipedrive import services as pd_services
from sandbox.pipedrive.guard import Caller
from sandbox.pipedrive.models import User
from sandbox.xero import identity
from sandbox.xero import services as xero_services
from tests.connector.sync.harness import SyncSandbox

SCOPE = "openid profile email offline_access accounting.contacts accounting.transactions"


@pytest.fixture
def sandbox_urls(settings, live_server, monkeypatch):
    """Every API address of the connector pointed at the sandboxes; limits kept in the database."""
    from django.db import connections

    # The live server answers each request in a new thread: let none keep its connection open
    # (PostgreSQL would refuse to drop the test database at the end of the run).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    base = f"{live_server.url}/sandbox"
    settings.XERO_AUTHORIZE_URL = f"{base}/xero/login/identity/connect/authorize"
    settings.XERO_IDENTITY_URL = f"{base}/xero/identity"
    settings.XERO_CONNECTIONS_URL = f"{base}/xero/api/connections"
    settings.XERO_API_URL = f"{base}/xero/api/api.xro/2.0"
    settings.PIPEDRIVE_OAUTH_URL = f"{base}/pipedrive"
    settings.PIPEDRIVE_API_URL = f"{base}/pipedrive"
    # Pipedrive tokens go to the sandbox's address only with the sandbox on (connector/connections/hosts.py).
    settings.SANDBOX_ENABLED = True
    settings.REDIS_URL = ""
    settings.PIPEDRIVE_BURST_LIMIT = 1000  # the sandbox company's burst is lifted too (pipedrive_company)
    yield base
    faults.reset()
    counters.reset()


@pytest.fixture
def xero_organisation(db):
    return xero_services.create_organisation("Sync Test Ltd")


@pytest.fixture
def xero_connection(sandbox_urls, xero_organisation):
    """An active connection holding a fresh sandbox token set for the organisation."""
    app = xero_services.create_app("Connector under test", ["https://app.example/connect/xero/callback/"])
    grant = xero_services.connect(app, [xero_organisation], SCOPE)
    access = identity._access_token(grant)
    refresh = identity._refresh_token(grant)
    return XeroConnection.objects.create(
        tenant_id=str(xero_organisation.tenant_id),
        tenant_name=xero_organisation.name,
        client_id=app.client_id,
        client_secret=app.client_secret,
        access_token=access.token,
        refresh_token=refresh.token,
        expires_at=timezone.now() + timedelta(minutes=25),
        status=ConnectionStatus.ACTIVE,
        secrets_set_at=timezone.now(),
    )


@pytest.fixture
def pipedrive_company(db):
    """The sandbox demo company (a "Sales" pipeline; API token ``DEMO_API_TOKEN``), bursts not limiting."""
    company = pd_services.ensure_demo_company()
    company.burst_override = 10_000  # the call counts are under test, not the burst waits
    company.save(update_fields=["burst_override"])
    return company


@pytest.fixture
def pipedrive_connection(sandbox_urls, pipedrive_company):
    return PipedriveConnection.objects.create(
        company_id=pipedrive_company.id,
        company_name=pipedrive_company.name,
        company_domain=pipedrive_company.domain,
        api_domain=f"{sandbox_urls}/pipedrive",
        auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token=pd_services.DEMO_API_TOKEN,
        status=ConnectionStatus.ACTIVE,
    )


@pytest.fixture
def default_rules(db):
    """The default mapping rows of the data migration: a transactional test before this one may have
    flushed them (Django empties every table after a transactional test)."""
    from django.apps import apps

    importlib.import_module("mapping.migrations.0002_default_rules").install(apps, None)


@pytest.fixture
def sync_pair(xero_connection, pipedrive_connection, default_rules):
    """An enabled pair with the default options and default mapping rows (tests change
    ``pair.options`` and save)."""
    return SyncPair.objects.create(
        name="Sandbox pair", xero_connection=xero_connection, pipedrive_connection=pipedrive_connection
    )


@pytest.fixture
def sandbox(xero_organisation, pipedrive_company, sync_pair):
    """Write Xero records, read Pipedrive, read counters; counters start at zero."""
    user = User.objects.get(api_token=pd_services.DEMO_API_TOKEN)
    caller = Caller(user, pipedrive_company, oauth=False, token_scope=f"api-token:{user.id}")
    counters.reset()
    return SyncSandbox(xero_organisation, pipedrive_company, caller)


@pytest.fixture(autouse=True)
def empty_shared_cache(db):
    """The shared cache (a database table the test flush leaves alone) starts empty in every sync test:
    cached Pipedrive stages or fields of an earlier test must not leak into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
