"""The official Xero SDK for Python (xero-python) against the sandbox on a live server.

A browser-like client walks the consent page; the code exchange is a plain form POST (as an
OAuth library does); from then on the SDK itself refreshes its token at the sandbox's token
endpoint, lists connections and pages through contacts, invoices and payments.
"""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

pytest.importorskip("xero_python", reason="xero-python is a test dependency (requirements/test.lock)")

from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.identity import IdentityApi

from sandbox import clock, counters
from sandbox.xero import accounting, services
from sandbox.xero.models import Contact, Invoice, Payment
from tests.sandbox.conftest import REDIRECT_URI, SANDBOX_URLS, SCOPE, XERO, pkce_pair

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def _consent(live_url, app, organisation, challenge):
    """A user's browser: open the consent page, tick the organisation, allow; returns the code."""
    browser = requests.Session()
    authorize_url = f"{live_url}{XERO}/login/identity/connect/authorize"
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "sdk-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = browser.get(authorize_url, params=params, timeout=10)
    assert page.status_code == 200
    csrf = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    answer = browser.post(
        authorize_url,
        data={
            **params,
            "csrfmiddlewaretoken": csrf,
            "action": "allow",
            "tenant": str(organisation.tenant_id),
        },
        headers={"Referer": authorize_url},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["sdk-state"]
    return query["code"][0]


@pytest.fixture
def sdk(live_server, monkeypatch, settings, db):
    settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain HTTP (as under `make run`)
    app = services.create_app("SDK app", [REDIRECT_URI])
    organisation = services.create_organisation("SDK Demo Org")
    services.seed_demo_data(organisation, customers=7)
    verifier, challenge = pkce_pair()
    code = _consent(live_server.url, app, organisation, challenge)
    exchanged = requests.post(
        f"{live_server.url}{XERO}/identity/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(app.client_id, app.client_secret),
        timeout=10,
    )
    assert exchanged.status_code == 200
    token = exchanged.json()

    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{live_server.url}{XERO}/identity/connect/token")
    monkeypatch.setattr(TokenApi, "revoke_token_url", f"{live_server.url}{XERO}/identity/connect/revocation")
    # The SDK's Configuration is a copy of the first one ever made (its metaclass keeps a default),
    # so constructor arguments are ignored after the first test: set the token on the copy.
    configuration = Configuration()
    configuration.oauth2_token = OAuth2Token(client_id=app.client_id, client_secret=app.client_secret)
    api_client = ApiClient(configuration, pool_threads=1)
    store = {}
    api_client.oauth2_token_getter(lambda: store["token"])
    api_client.oauth2_token_saver(lambda new: store.__setitem__("token", new))
    # Stored as an app would keep it, already past its expiry: the SDK must refresh before its first call.
    api_client.set_oauth2_token({**token, "scope": token["scope"].split(), "expires_at": 0})
    yield {
        "app": app,
        "organisation": organisation,
        "tenant": str(organisation.tenant_id),
        "store": store,
        "first_refresh_token": token["refresh_token"],
        "identity": IdentityApi(api_client, base_url=f"{live_server.url}{XERO}/api"),
        "accounting": AccountingApi(api_client, base_url=f"{live_server.url}{XERO}/api/api.xro/2.0"),
    }
    api_client.rest_client.pool_manager.clear()


def test_sdk_refreshes_its_token_and_lists_connections(sdk):
    connections = sdk["identity"].get_connections()
    assert [str(c.tenant_id) for c in connections] == [sdk["tenant"]]
    assert connections[0].tenant_name == "SDK Demo Org" and connections[0].tenant_type == "ORGANISATION"
    # The SDK refreshed at the sandbox's token endpoint and saved the rotated token.
    assert sdk["store"]["token"]["refresh_token"] != sdk["first_refresh_token"]
    assert counters.calls_to("xero", "POST /connect/token", status=200) == 2  # code exchange + SDK refresh


def _all_pages(fetch, key, page_size):
    items, page = [], 1
    while True:
        batch = getattr(fetch(page=page, page_size=page_size), key)
        items += batch
        if len(batch) < page_size:
            return items
        page += 1


def test_sdk_reads_contacts_invoices_and_payments_with_paging(sdk):
    api, tenant = sdk["accounting"], sdk["tenant"]
    org = sdk["organisation"]
    contacts = _all_pages(lambda **kw: api.get_contacts(tenant, **kw), "contacts", 3)
    assert sorted(str(c.contact_id) for c in contacts) == sorted(
        str(i) for i in Contact.objects.filter(organisation=org).values_list("contact_id", flat=True)
    )
    invoices = _all_pages(lambda **kw: api.get_invoices(tenant, **kw), "invoices", 5)
    assert len(invoices) == Invoice.objects.filter(organisation=org).count() == 21
    paid = [i for i in invoices if i.status == "PAID"]
    assert paid and all(i.amount_due == 0 for i in paid)
    payments = _all_pages(lambda **kw: api.get_payments(tenant, **kw), "payments", 2)
    assert len(payments) == Payment.objects.filter(organisation=org).count() > 0
    assert all(isinstance(p.date, dt.date) for p in payments)

    one = api.get_contact(tenant, contacts[0].contact_id).contacts[0]
    assert one.name == contacts[0].name
    assert one.balances.accounts_receivable.outstanding is not None
    invoice = api.get_invoice(tenant, invoices[0].invoice_id).invoices[0]
    assert invoice.line_items and invoice.total == invoices[0].total
    payment = api.get_payment(tenant, payments[0].payment_id).payments[0]
    assert payment.amount == payments[0].amount
    filtered = api.get_invoices(tenant, statuses=["PAID"], page=1).invoices
    assert {i.invoice_id for i in filtered} == {i.invoice_id for i in paid}


def test_sdk_if_modified_since_returns_only_later_changes(sdk):
    api, tenant, org = sdk["accounting"], sdk["tenant"], sdk["organisation"]
    clock.advance(5)
    since = clock.now()
    clock.advance(5)
    new = accounting.create_contact(org, {"Name": "Late Customer Ltd"})
    changed = api.get_contacts(tenant, if_modified_since=since).contacts
    assert [str(c.contact_id) for c in changed] == [str(new.contact_id)]
    assert api.get_invoices(tenant, if_modified_since=since).invoices == []
    assert api.get_payments(tenant, if_modified_since=since).payments == []
