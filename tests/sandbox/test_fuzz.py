"""Generated requests from the official specs against both emulators (schemathesis, in-process WSGI).

Every emulated operation, none left out (Xero Contacts, Invoices, Payments, CreditNotes and
Organisation; Pipedrive v2 organizations, persons, deals, activities, pipelines, stages, fields and
search), gets the spec's own examples and valid and invalid requests built from its spec (types,
required fields, enums, nested items, odd strings and numbers); the emulator must never answer 5xx,
and what it answers with a documented status must match the spec as the real API serves it
(``sandbox/spec_differences.py``). The specs are read as their JSON equivalent (``specs.load_spec``:
unquoted example dates stay strings, which schemathesis needs). Bounded: ``FUZZ_EXAMPLES`` examples
per operation, derandomised so a CI failure reproduces (about two minutes for the 72 operations on a
loaded two-core machine); raise it locally (``FUZZ_EXAMPLES=100`` or more) for a deeper run.
"""

import contextlib
import os

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test extra")

from django.core.signals import request_finished, request_started  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from sandbox.spec_differences import served_spec  # noqa: E402
from tests.sandbox.conftest import SANDBOX_URLS, SCOPE, authorize, token_request  # noqa: E402

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
HOST = "http://testserver"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
CHECKS = [not_a_server_error, response_schema_conformance]

# What the sandbox emulates, by spec path; other operations of the specs are not served.
XERO_OPERATIONS = r"^/(Contacts|Invoices|Payments|CreditNotes)(/\{[A-Za-z]+\})?$|^/Organisation$"
PIPEDRIVE_V2_OPERATIONS = (
    r"^/(organizations|persons|deals)(/\{id\}|/search)?$"
    r"|^/itemSearch(/field)?$|^/(deal|person|organization)Fields(/\{field_code\})?$"
    r"|^/(pipelines|stages)(/\{id\})?$"
    r"|^/activities(/\{id\})?$"
)
PIPEDRIVE_V2_METHODS = ["GET", "POST", "PATCH", "DELETE"]


def _schema(service: str, name: str, base: str, path_regex: str, methods: list[str]):
    document = served_spec(service, name)
    document["servers"] = [{"url": f"{HOST}{base}"}]
    config = SchemathesisConfig.from_dict(
        {
            # Valid and invalid requests; the coverage phase enumerates every boundary of these large
            # specs up front (minutes), so the bounded random phases do the work here.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {"mode": "all", "deterministic": True, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    schema = schema.include(path_regex=path_regex, method=methods)
    schema.app = get_wsgi_application()
    return schema


xero_schema = _schema(
    "xero", "accounting", "/sandbox/xero/api/api.xro/2.0", XERO_OPERATIONS, ["GET", "PUT", "POST"]
)
pipedrive_schema = _schema(
    "pipedrive", "v2", "/sandbox/pipedrive/api/v2", PIPEDRIVE_V2_OPERATIONS, PIPEDRIVE_V2_METHODS
)


@pytest.fixture
def xero_headers(client):
    from sandbox.xero import services

    app = services.create_app("Fuzzer", ["https://app.example/connect/xero/callback/"])
    app.minute_limit = app.day_limit = app.app_minute_limit = 10**6
    app.concurrent_limit = 100
    app.save()
    organisation = services.create_organisation("Fuzz Ltd")
    query = authorize(client, app, [organisation], scope=f"{SCOPE} accounting.settings.read")
    tokens = token_request(
        client,
        app,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri="https://app.example/connect/xero/callback/",
    ).json()
    services.seed_demo_data(organisation, customers=3)  # records for lists, and ids to refer to
    return {
        "Authorization": f"Bearer {tokens['access_token']}",
        "xero-tenant-id": str(organisation.tenant_id),
    }


@pytest.fixture
def pipedrive_headers(db):
    from sandbox.pipedrive import services

    company = services.ensure_demo_company()
    company.burst_override = company.daily_budget_override = 10**6
    company.save()
    return {"x-api-token": services.DEMO_API_TOKEN}


@contextlib.contextmanager
def _test_connection_kept():
    """The WSGI handler closes the database connection around each request (as in production); the
    test's transaction lives on that connection, so keep it open as Django's test client does."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(close_old_connections)


def _call(case, headers):
    with _test_connection_kept():
        response = case.call(headers={**(case.headers or {}), **headers})
    case.validate_response(response, checks=CHECKS)


@xero_schema.parametrize()
@FUZZ
def test_xero_never_answers_5xx_and_answers_as_specified(case, xero_headers):
    _call(case, xero_headers)


@pipedrive_schema.parametrize()
@FUZZ
def test_pipedrive_never_answers_5xx_and_answers_as_specified(case, pipedrive_headers):
    _call(case, pipedrive_headers)
