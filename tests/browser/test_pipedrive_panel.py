"""In Chromium: the sandbox's Pipedrive organization page draws the connector's JSON panel (the
customer's account and invoices), as Pipedrive's sidebar would. Screenshot: pipedrive-panel-organization."""

import datetime as dt

from django.contrib.auth.models import User

from connector.sync import sync_records
from mapping.models import RecordLink
from tests.browser.conftest import log_in
from tests.connector.panel.sandbox.test_panel_on_sandbox import PANEL_SECRET, STAGES, register_panel
from tests.connector.panel.sandbox.urls import PANEL_MARKS
from tests.connector.sync.conftest import (  # noqa: F401 (fixtures)
    default_rules,
    empty_shared_cache,
    pipedrive_company,
    pipedrive_connection,
    sandbox,
    sandbox_urls,
    sync_pair,
    xero_connection,
    xero_organisation,
)

pytestmark = PANEL_MARKS
PASSWORD = "sandbox-admin-pw-for-tests-1"


def test_the_sandbox_organization_page_shows_the_panel(page, screenshot, live_server, sync_pair, sandbox):  # noqa: F811
    sync_pair.pipedrive_panel_secret = PANEL_SECRET
    sync_pair.save()
    sandbox.add_pipeline("Xero invoices", STAGES)
    contact_id = sandbox.create_contact("Harbour Supplies Ltd")
    late = sandbox.create_invoice(contact_id, amount=1250, date=dt.date.today() - dt.timedelta(days=37))
    upcoming = sandbox.create_invoice(contact_id, amount=480, date=dt.date.today() - dt.timedelta(days=5))
    paid = sandbox.create_invoice(contact_id, amount=300, date=dt.date.today() - dt.timedelta(days=50))
    sandbox.pay(paid, 300, date=dt.date.today() - dt.timedelta(days=12))
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    sync_records(sync_pair, "INVOICE", [late, upcoming, paid], trigger="webhook")
    org_id = RecordLink.objects.get(
        pair=sync_pair, xero_type="contact", pipedrive_type="organization"
    ).pipedrive_id
    register_panel(live_server, sync_pair)
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)

    log_in(
        page, live_server.url, f"/admin/sandbox_pipedrive/organization/{org_id}/change/", "admin", PASSWORD
    )
    panel = page.locator("section.json-panel")
    panel.wait_for()
    text = panel.inner_text()
    assert "Account: Harbour Supplies Ltd" in text and "Overdue 7 days" in text
    assert "Awaiting payment" in text and "Paid" in text
    assert panel.locator(".json-panel-object").count() == 4
    screenshot(page, "pipedrive-panel-organization")
