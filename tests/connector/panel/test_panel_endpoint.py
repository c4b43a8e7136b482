"""The JSON panel endpoint: a signed request gets the customer's invoices; anything else is refused."""

import json
import time
from decimal import Decimal
from pathlib import Path

import jwt
import pytest

from connector.models import KnownInvoice
from connector.panel.services import MAX_OBJECTS, SCHEMA_PATH
from mapping.models import CreditLimit, RecordLink
from tests.connector.panel.conftest import (
    CONTACT,
    PANEL_SECRET,
    add_invoice,
    days,
    panel_query,
    panel_url,
    signed_token,
)

pytestmark = pytest.mark.django_db


def test_a_signed_request_gets_the_organizations_account_and_invoices(client, customer, panel_pair):
    CreditLimit.objects.create(
        pair=panel_pair, contact_id=CONTACT.upper(), amount=Decimal("2000"), currency="NZD"
    )
    response = client.get(panel_url(panel_pair), panel_query())
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    account, *invoices = data
    assert account["header"] == "Account: Acme Ltd"
    assert account["outstanding"] == {"code": "NZD", "value": 1750.0}
    # Overdue from the due dates: INV-0042 fell due 4 days ago, Xero's last-read balance said 0.
    assert account["overdue"] == {"code": "NZD", "value": 1250.0}
    assert account["credit_limit"] == {"code": "NZD", "value": 2000.0}
    assert account["available_credit"] == {"code": "NZD", "value": 250.0}
    assert account["credit"] == {"color": "green", "label": "Within credit limit"}
    assert account["open_invoices"] == 2
    assert account["last_payment"].startswith("300.00 NZD on ")
    # Open invoices first (overdue first), then the paid one.
    assert [i["header"] for i in invoices] == ["INV-0042", "INV-0043", "INV-0041"]
    overdue, upcoming, paid = invoices
    assert overdue["status"] == {"color": "red", "label": "Overdue 4 days"}
    assert overdue["days_overdue"] == 4 and overdue["due"] == days(-4).isoformat()
    assert overdue["amount_due"] == {"code": "NZD", "value": 1250.0}
    assert overdue["xero"] == {
        "label": "Open INV-0042 in Xero",
        "value": f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={customer['overdue'].invoice_id}",
        "external": True,
    }
    assert upcoming["status"]["label"] == "Awaiting payment" and upcoming["days_overdue"] == 0
    assert paid["status"] == {"color": "green", "label": "Paid"} and paid["amount_due"]["value"] == 0.0
    assert len({obj["id"] for obj in data}) == len(data)


def test_every_property_sent_is_declared_in_the_schema(client, customer, panel_pair):
    """Pipedrive refuses the whole panel when an object carries a property its schema does not declare."""
    schema = json.loads(Path(SCHEMA_PATH).read_text())
    declared = set(schema["items"]["properties"])
    answers = [
        client.get(panel_url(panel_pair), panel_query()).json(),
        client.get(panel_url(panel_pair), panel_query(999)).json(),  # the "not linked" message
    ]
    for answer in answers:
        for obj in answer["data"]:
            assert set(obj) <= declared, set(obj) - declared
            assert {"id", "header"} <= set(obj)
            assert len(set(obj) - {"header"}) <= 20  # Pipedrive's limit of fields per object


def test_a_deal_shows_its_invoice_then_the_customers_account(client, customer, panel_pair):
    RecordLink.objects.create(
        pair=panel_pair,
        xero_type="invoice",
        xero_id=customer["overdue"].invoice_id.upper(),
        pipedrive_type="deal",
        pipedrive_id=9001,
    )
    response = client.get(panel_url(panel_pair), panel_query(9001, resource="deal"))
    assert response.status_code == 200
    invoice, account = response.json()["data"]
    assert invoice["header"] == "INV-0042" and invoice["status"]["color"] == "red"
    assert account["header"] == "Account: Acme Ltd" and account["overdue"]["value"] == 1250.0


def test_an_organization_the_connector_does_not_know_gets_an_empty_panel_with_a_message(client, panel_pair):
    response = client.get(panel_url(panel_pair), panel_query(424242))
    assert response.status_code == 200
    (message,) = response.json()["data"]
    assert message["header"] == "Not linked to Xero" and "no invoices to show" in message["note"]
    deal = client.get(panel_url(panel_pair), panel_query(424242, resource="deal")).json()["data"]
    assert deal[0]["header"] == "No Xero invoice"


def test_at_most_ten_objects_however_many_invoices(client, customer, panel_pair):
    for number in range(100, 130):
        add_invoice(panel_pair, number, total="10.00", due=days(number - 115))
    data = client.get(panel_url(panel_pair), panel_query()).json()["data"]
    assert len(data) == MAX_OBJECTS
    assert data[0]["open_invoices"] == 32  # every open one is counted, nine are shown
    shown = [obj["due"] for obj in data[1:]]
    assert shown == sorted(shown)  # the oldest due dates first: the most overdue


def test_a_change_to_the_ledger_shows_on_the_next_view(client, customer, panel_pair):
    """The panel reads the records on each view: a payment the sync kept changes the answer."""
    first = client.get(panel_url(panel_pair), panel_query()).json()["data"]
    assert first[1]["amount_due"]["value"] == 1250.0
    KnownInvoice.objects.filter(pk=customer["overdue"].pk).update(
        amount_due=Decimal("250.00"), amount_paid=Decimal("1000.00")
    )
    again = client.get(panel_url(panel_pair), panel_query()).json()["data"]
    assert again[1]["amount_due"]["value"] == 250.0
    assert again[0]["overdue"]["value"] == 250.0


# ---------------------------------------------------------------- refusals


def assert_refused(response, status, title_part):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert title_part.lower() in (error["title"] + " " + error["subtitle"]).lower()
    assert "data" not in response.json()
    return error


def test_an_unsigned_request_is_refused(client, customer, panel_pair):
    query = panel_query()
    del query["token"]
    assert_refused(client.get(panel_url(panel_pair), query), 401, "no token")


def test_a_badly_signed_request_is_refused(client, customer, panel_pair):
    forged = signed_token("someone-elses-panel-secret-VALUE-0000")
    assert_refused(client.get(panel_url(panel_pair), panel_query(token=forged)), 401, "signature")
    assert_refused(client.get(panel_url(panel_pair), panel_query(token="not.a.jwt")), 401, "not a valid JWT")
    unsigned = jwt.encode(
        {"userId": 777, "companyId": 1, "iat": int(time.time())}, key=None, algorithm="none"
    )
    assert_refused(client.get(panel_url(panel_pair), panel_query(token=unsigned)), 401, "not signed")


def test_an_expired_request_is_refused(client, customer, panel_pair):
    expired = signed_token(issued=int(time.time()) - 3600, lifetime=600)
    assert_refused(client.get(panel_url(panel_pair), panel_query(token=expired)), 401, "expired")
    # Without exp, a token older than ten minutes is refused too.
    old = signed_token(issued=int(time.time()) - 1200, lifetime=None)
    assert_refused(client.get(panel_url(panel_pair), panel_query(token=old)), 401, "too old")
    fresh = signed_token(lifetime=None)
    assert client.get(panel_url(panel_pair), panel_query(token=fresh)).status_code == 200


def test_a_foreign_company_is_refused(client, customer, panel_pair):
    """Signed with the right secret but for another Pipedrive company: that company sees nothing."""
    token = signed_token(company=99)
    error = assert_refused(
        client.get(panel_url(panel_pair), panel_query(token=token, company=99)),
        403,
        "another pipedrive company",
    )
    assert "Acme" not in json.dumps(error)


def test_claims_must_match_the_query(client, customer, panel_pair):
    """A token is bound to its request: it cannot be replayed with another company or user."""
    token = signed_token(company=99)
    assert_refused(
        client.get(panel_url(panel_pair), panel_query(token=token)), 401, "not the request's companyId"
    )
    token = signed_token(user=1)
    assert_refused(client.get(panel_url(panel_pair), panel_query(token=token)), 401, "userId")


def test_an_unknown_panel_address_and_bad_parameters(client, customer, panel_pair):
    response = client.get("/pipedrive/panel/no-such-pair/", panel_query())
    assert_refused(response, 404, "unknown panel address")
    assert_refused(client.get(panel_url(panel_pair), panel_query("abc")), 400, "selectedIds")
    assert_refused(
        client.get(panel_url(panel_pair), panel_query(resource="person")), 400, "organization and deal"
    )
    assert client.post(panel_url(panel_pair), panel_query()).status_code == 405


def test_without_a_panel_secret_the_oauth_apps_client_secret_verifies(
    client, xero_connection, pipedrive_oauth_connection
):
    from connector.models import SyncPair

    pair = SyncPair.objects.create(
        name="OAuth pair", xero_connection=xero_connection, pipedrive_connection=pipedrive_oauth_connection
    )
    client_secret = pipedrive_oauth_connection.client_secret
    ok = client.get(panel_url(pair), panel_query(token=signed_token(client_secret, company=2), company=2))
    assert ok.status_code == 200
    wrong = client.get(panel_url(pair), panel_query(token=signed_token(PANEL_SECRET, company=2), company=2))
    assert_refused(wrong, 401, "signature")


def test_a_pair_with_no_secret_at_all_says_how_to_set_it_up(
    client, xero_connection, pipedrive_api_token_connection
):
    from connector.models import SyncPair

    pair = SyncPair.objects.create(
        name="No secret", xero_connection=xero_connection, pipedrive_connection=pipedrive_api_token_connection
    )
    assert_refused(client.get(panel_url(pair), panel_query()), 403, "no jwt secret is stored")


def test_a_refusal_never_echoes_the_token_or_a_secret(client, customer, panel_pair, caplog):
    forged = signed_token("someone-elses-panel-secret-VALUE-0000")
    caplog.set_level("INFO")
    response = client.get(panel_url(panel_pair), panel_query(token=forged))
    text = response.content.decode() + caplog.text
    assert forged not in text and PANEL_SECRET not in text
    assert "refused" in caplog.text


def test_the_panel_answers_within_a_bounded_number_of_queries(
    client, customer, panel_pair, django_assert_max_num_queries
):
    for number in range(100, 150):
        add_invoice(panel_pair, number, total="10.00", due=days(number - 140))
    RecordLink.objects.create(
        pair=panel_pair,
        xero_type="invoice",
        xero_id=customer["overdue"].invoice_id,
        pipedrive_type="deal",
        pipedrive_id=9001,
    )
    with django_assert_max_num_queries(7):
        assert client.get(panel_url(panel_pair), panel_query()).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(panel_url(panel_pair), panel_query(9001, resource="deal")).status_code == 200
    with django_assert_max_num_queries(1):  # a refused request reads the pair only
        assert client.get(panel_url(panel_pair), panel_query(token="x")).status_code == 401
