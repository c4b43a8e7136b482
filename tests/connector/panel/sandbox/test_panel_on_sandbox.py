"""End to end: the connector syncs a customer, the sandbox's Pipedrive draws the registered panel on the
organization's and the deal's pages by calling the connector with a signed token, as Pipedrive does."""

import datetime as dt
import json

from django.test import Client
from django.urls import reverse

from connector.panel.services import SCHEMA_PATH
from connector.sync import sync_records
from mapping.models import RecordLink
from sandbox.pipedrive.models import PanelExtension
from tests.connector.panel.sandbox.urls import PANEL_MARKS

pytestmark = PANEL_MARKS

PANEL_SECRET = "sandbox-panel-jwt-secret-VALUE-0001"
STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]
TOKEN = "test-sandbox-control-token"  # config/settings_test.py


def register_panel(live_server, pair, secret=PANEL_SECRET) -> dict:
    """Through the sandbox's control endpoint, as Developer Hub's form would."""
    answer = Client().post(
        "/sandbox/pipedrive/_panels",
        json.dumps(
            {
                "name": "Xero invoices",
                "endpoint_url": live_server.url + reverse("panel:panel", args=[pair.key]),
                "jwt_secret": secret,
                "schema": json.loads(SCHEMA_PATH.read_text()),
                "company_id": pair.pipedrive_connection.company_id,
            }
        ),
        content_type="application/json",
        HTTP_X_SANDBOX_TOKEN=TOKEN,
    )
    assert answer.status_code == 201, answer.content
    assert "jwt_secret" not in answer.json() and answer.json()["has_jwt_secret"] is True
    return answer.json()


def panel_html(admin_client, model: str, record_id: int) -> str:
    page = admin_client.get(f"/admin/sandbox_pipedrive/{model}/{record_id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="json-panels"' in html
    return html.split('id="json-panels"', 1)[1].split("</section>\n  \n</div>", 1)[0]


def test_the_organization_page_shows_the_customers_invoices_and_stays_true_after_a_payment(
    live_server, sync_pair, sandbox, admin_client
):
    sync_pair.pipedrive_panel_secret = PANEL_SECRET
    sync_pair.save()
    sandbox.add_pipeline("Xero invoices", STAGES)  # as the admin's "Create the invoice pipeline" makes it
    contact_id = sandbox.create_contact("Panel Customer Ltd")
    late = sandbox.create_invoice(contact_id, amount=1250, date=dt.date.today() - dt.timedelta(days=40))
    sandbox.create_invoice(contact_id, amount=400, date=dt.date.today())
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    sync_records(sync_pair, "INVOICE", [late], trigger="webhook")
    org_id = RecordLink.objects.get(
        pair=sync_pair, xero_type="contact", pipedrive_type="organization"
    ).pipedrive_id
    register_panel(live_server, sync_pair)

    panel = panel_html(admin_client, "organization", org_id)
    assert "Xero invoices" in panel and "Account: Panel Customer Ltd" in panel
    assert "Overdue 10 days" in panel  # issued 40 days ago, due in 30
    assert "1,250.00" in panel and "Something went wrong" not in panel

    sandbox.pay(late, 1000)
    sync_records(sync_pair, "INVOICE", [late], trigger="webhook")
    panel = panel_html(admin_client, "organization", org_id)
    assert "Amount due</th><td>250.00 NZD" in panel
    assert "1,000.00 NZD on " in panel  # the last payment

    deal_id = RecordLink.objects.get(pair=sync_pair, xero_type="invoice", pipedrive_type="deal").pipedrive_id
    deal = panel_html(admin_client, "deal", deal_id)
    assert deal.index("<h3>INV-") < deal.index("Account: Panel Customer Ltd")


def test_a_panel_signed_with_another_secret_shows_the_connectors_refusal(
    live_server, sync_pair, sandbox, admin_client
):
    sync_pair.pipedrive_panel_secret = PANEL_SECRET
    sync_pair.save()
    contact_id = sandbox.create_contact("Refused Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    org_id = RecordLink.objects.get(
        pair=sync_pair, xero_type="contact", pipedrive_type="organization"
    ).pipedrive_id
    register_panel(live_server, sync_pair, secret="not-the-pairs-panel-secret-VALUE-01")
    panel = panel_html(admin_client, "organization", org_id)
    assert "Not signed by Pipedrive" in panel and "Refused Ltd" not in panel
    assert PanelExtension.objects.count() == 1
