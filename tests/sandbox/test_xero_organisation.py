"""Sandbox Xero: GET /Organisation (its Timezone, the accounting.settings scope) and the overdue balance
that follows the sandbox clock in the organisation's time zone, with nothing written."""

import datetime as dt
import json

import pytest

from sandbox import clock
from sandbox.models import WebhookDelivery
from sandbox.xero.models import Organisation
from tests.sandbox.conftest import REDIRECT_URI, SANDBOX_URLS, XeroSession, authorize, token_request
from tests.sandbox.test_xero_accounting import make_contact, make_invoice, pay

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SETTINGS_SCOPE = "openid offline_access accounting.contacts accounting.transactions accounting.settings.read"


@pytest.fixture
def xero(client, xero_app, xero_orgs):
    """Connected with the settings scope (GET /Organisation needs it)."""
    query = authorize(client, xero_app, xero_orgs, scope=SETTINGS_SCOPE)
    answer = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    )
    assert answer.status_code == 200, answer.content
    return XeroSession(client, xero_app, answer.json(), str(xero_orgs[0].tenant_id))


def test_the_organisation_endpoint_names_its_time_zone(xero, xero_orgs):
    Organisation.objects.filter(pk=xero_orgs[0].pk).update(timezone="EASTERNSTANDARDTIME")
    answer = xero.get("/Organisation")
    assert answer.status_code == 200, answer.content
    (organisation,) = answer.json()["Organisations"]
    assert organisation["OrganisationID"] == str(xero_orgs[0].tenant_id)
    assert organisation["Name"] == "Acme Ltd" and organisation["BaseCurrency"] == "NZD"
    assert organisation["Timezone"] == "EASTERNSTANDARDTIME"
    assert xero.get("/organisation").json()["Organisations"][0]["Name"] == "Acme Ltd"  # both spellings


def test_without_the_settings_scope_the_organisation_is_refused(client, xero_app, xero_orgs):
    query = authorize(client, xero_app, xero_orgs)  # contacts and transactions only
    tokens = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    session = XeroSession(client, xero_app, tokens, str(xero_orgs[0].tenant_id))
    answer = session.get("/Organisation")
    # As the sandbox answers any call outside the consent's scope (sandbox/xero/guard.py).
    assert answer.status_code == 401 and answer.json()["Detail"] == "AuthorizationUnsuccessful"
    assert session.get("/Contacts").status_code == 200


def move_clock(xero, **body):
    """Move the clock, then refresh the token set (a day on, the 30-minute access token has expired)."""
    answer = xero.client.post("/sandbox/_clock", json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    refreshed = token_request(
        xero.client, xero.app, grant_type="refresh_token", refresh_token=xero.tokens["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.content
    xero.tokens = refreshed.json()


def days_on(days: int) -> str:
    return (clock.now().date() + dt.timedelta(days=days)).isoformat()


def balances(xero, contact_id):
    contact = xero.get(f"/Contacts/{contact_id}").json()["Contacts"][0]
    return contact["Balances"]["AccountsReceivable"]


def test_moving_the_clock_past_the_due_date_makes_the_invoice_overdue_with_nothing_written(xero):
    contact = make_contact(xero, "Ridgeway University")
    due_date = days_on(3)
    invoice = make_invoice(xero, contact["ContactID"], amount=1250, date=days_on(0), due=due_date)
    pay(xero, invoice["InvoiceID"], 250, date=days_on(0))
    assert balances(xero, contact["ContactID"]) == {"Outstanding": 1250.0 * 1.15 - 250, "Overdue": 0.0}
    before = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    contact_before = xero.get(f"/Contacts/{contact['ContactID']}").json()["Contacts"][0]
    deliveries = WebhookDelivery.objects.count()

    move_clock(xero, date=due_date, timezone="Pacific/Auckland")  # the due date itself
    assert balances(xero, contact["ContactID"])["Overdue"] == 0.0
    day_after = (dt.date.fromisoformat(due_date) + dt.timedelta(days=1)).isoformat()
    move_clock(xero, date=day_after, timezone="Pacific/Auckland")
    due = 1250.0 * 1.15 - 250
    assert balances(xero, contact["ContactID"]) == {"Outstanding": due, "Overdue": due}

    after = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert after["UpdatedDateUTC"] == before["UpdatedDateUTC"] and after["AmountDue"] == before["AmountDue"]
    contact_after = xero.get(f"/Contacts/{contact['ContactID']}").json()["Contacts"][0]
    assert contact_after["UpdatedDateUTC"] == contact_before["UpdatedDateUTC"]
    assert WebhookDelivery.objects.count() == deliveries  # Xero sends nothing when a due date passes

    # Paid in full: nothing outstanding, nothing overdue.
    pay(xero, invoice["InvoiceID"], due, date=days_on(0))
    assert balances(xero, contact["ContactID"]) == {"Outstanding": 0.0, "Overdue": 0.0}


def test_the_overdue_day_is_counted_in_the_organisations_time_zone(xero, xero_orgs):
    contact = make_contact(xero, "Night Owl Ltd")
    due = clock.now().date() + dt.timedelta(days=2)
    make_invoice(xero, contact["ContactID"], amount=100, date=days_on(0), due=due.isoformat())
    # 20:00 UTC on the due date is already the next day in Auckland (UTC+12/+13), not in New York.
    move_clock(xero, datetime=f"{due.isoformat()}T20:00:00Z")
    assert xero_orgs[0].timezone == "NEWZEALANDSTANDARDTIME"
    assert balances(xero, contact["ContactID"])["Overdue"] == 115.0
    Organisation.objects.filter(pk=xero_orgs[0].pk).update(timezone="EASTERNSTANDARDTIME")
    assert balances(xero, contact["ContactID"])["Overdue"] == 0.0
    assert clock.now().astimezone(dt.UTC).date() == due
