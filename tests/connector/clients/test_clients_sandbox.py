"""The clients end to end against the sandboxes over a live server: real shapes, typed errors, limits."""

import logging

import pytest

from connector.clients.pipedrive import PipedriveClient
from connector.clients.xero import XeroClient
from connector.errors import AuthExpired, NotFound, ValidationFailed
from sandbox import counters, faults
from sandbox.pipedrive import services as pipedrive_services
from sandbox.xero import identity
from sandbox.xero import services as xero_services
from tests.sandbox.conftest import SANDBOX_URLS, SCOPE, XERO

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class Tokens:
    def __init__(self, token, fresh=None):
        self.token, self.fresh, self.refreshes = token, fresh, 0

    def get_token(self):
        return self.token

    def on_unauthorized(self):
        self.refreshes += 1
        self.token = self.fresh or self.token
        return self.token


@pytest.fixture(autouse=True)
def _db_limits(settings):
    settings.REDIS_URL = ""
    yield
    faults.reset()


@pytest.fixture
def xero(live_server):
    app = xero_services.create_app("Client test", ["https://app.example/cb/"])
    organisation = xero_services.create_organisation("Client Ltd")
    xero_services.seed_demo_data(organisation, customers=3)
    grant = xero_services.connect(app, [organisation], SCOPE)
    token = identity._access_token(grant).token
    base = f"{live_server.url}{XERO}/api/api.xro/2.0"
    return {"tenant": str(organisation.tenant_id), "token": token, "base": base}


def test_xero_reads_contacts_invoices_and_payments_and_tracks_the_remaining_limits(xero):
    client = XeroClient(xero["tenant"], Tokens(xero["token"]), base_url=xero["base"])
    contacts = list(client.iter_contacts(page_size=2))
    assert len(contacts) >= 3 and all("ContactID" in c for c in contacts)
    assert client.get_contact(contacts[0]["ContactID"])["ContactID"] == contacts[0]["ContactID"]
    invoices = client.get_invoices(page=1)
    assert invoices and client.get_invoice(invoices[0]["InvoiceID"])["InvoiceID"] == invoices[0]["InvoiceID"]
    client.get_payments(page=1)
    made = counters.snapshot("xero", xero["tenant"])["calls"]
    # Our count agrees with the sandbox's X-MinLimit-Remaining / X-DayLimit-Remaining.
    assert client.remaining_limits() == {"minute": 60 - made, "day": 5000 - made}


def test_xero_typed_errors_from_the_sandbox(xero, caplog):
    caplog.set_level(logging.DEBUG)
    client = XeroClient(xero["tenant"], Tokens(xero["token"]), base_url=xero["base"])
    with pytest.raises(NotFound):
        client.get_contact("00000000-0000-0000-0000-000000000001")
    with pytest.raises(ValidationFailed) as caught:
        client.get_invoices(where='Status == "AUTHORISED" AND AND')
    assert caught.value.message
    expired = XeroClient(xero["tenant"], Tokens("not-a-token"), base_url=xero["base"])
    with pytest.raises(AuthExpired):
        expired.get_contacts()
    assert expired.token_provider.refreshes == 1
    assert caplog.records and xero["token"] not in caplog.text  # neither client nor server logs it


def test_xero_401_is_retried_once_with_the_refreshed_token(xero):
    provider = Tokens("stale-token", fresh=xero["token"])
    client = XeroClient(xero["tenant"], provider, base_url=xero["base"])
    assert client.get_contacts(page=1, page_size=1)
    assert provider.refreshes == 1


def test_pipedrive_api_token_crud_search_and_current_user(live_server):
    company = pipedrive_services.ensure_demo_company()
    client = PipedriveClient(
        company.id, f"{live_server.url}/sandbox/pipedrive", pipedrive_services.DEMO_API_TOKEN
    )
    created = client.create("organization", {"name": "Limits Test Org"})
    assert client.get("organization", created["id"])["name"] == "Limits Test Org"
    assert [o["id"] for o in client.search_organizations("Limits Test Org")] == [created["id"]]
    assert client.get_current_user()["id"]
    client.delete("organization", created["id"])
    with pytest.raises(NotFound):
        client.get("organization", 999999)
    seen = counters.snapshot("pipedrive", str(company.id))
    assert client.remaining_limits() == {
        "daily-tokens": 30000 - seen["tokens"]
    }  # our count matches the sandbox's cost table
    bad = PipedriveClient(company.id, f"{live_server.url}/sandbox/pipedrive", "wrong-token")
    with pytest.raises(AuthExpired):
        bad.get_current_user()


def test_pipedrive_activities_through_the_client(live_server):
    """The overdue reminder's calls: create, mark done, list a deal's activities; tokens as the spec."""
    company = pipedrive_services.ensure_demo_company()
    client = PipedriveClient(
        company.id, f"{live_server.url}/sandbox/pipedrive", pipedrive_services.DEMO_API_TOKEN
    )
    org = client.create("organization", {"name": "Overdue Ltd"})
    deal = client.create("deal", {"title": "INV-0042", "org_id": org["id"]})
    owner_id = client.get_current_user()["id"]
    before = counters.snapshot("pipedrive", str(company.id))["tokens"]
    activity = client.create_activity(
        {"subject": "INV-0042 overdue", "type": "task", "due_date": "2026-12-10", "owner_id": owner_id,
         "deal_id": deal["id"], "org_id": org["id"]}
    )  # fmt: skip
    assert client.activities_for_deal(deal["id"], done=False) == [activity]
    closed = client.update_activity(activity["id"], {"done": True})
    assert closed["done"] is True
    assert client.activities_for_deal(deal["id"], done=False) == []
    assert [a["id"] for a in client.activities_for_deal(deal["id"])] == [activity["id"]]
    spent = counters.snapshot("pipedrive", str(company.id))["tokens"] - before
    assert spent == 5 + 10 + 5 + 10 + 10  # POST, GET list, PATCH, GET list, GET list
    assert client.remaining_limits() == {
        "daily-tokens": 30000 - counters.snapshot("pipedrive", str(company.id))["tokens"]
    }
