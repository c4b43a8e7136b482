"""Finance looking into one customer, in Chromium: the Sync records list searched by the customer's
name, the story page of its invoice (custom fields by name, changed marks) and its timeline.
Screenshots: audit-search-list, audit-search-story, audit-search-timeline."""

import re

from connector.setup import pipedrive_fields as pipedrive_setup
from connector.sync import sync_records
from tests.audit.conftest import STAFF_PASSWORD
from tests.browser.conftest import log_in
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
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS
STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


def test_finance_finds_a_customer_reads_the_story_and_the_timeline(
    page,
    screenshot,
    live_server,
    finance_user,
    sync_pair,  # noqa: F811
    sandbox,  # noqa: F811
    settings,
):
    settings.AUDIT_PERSONAL_DATA = "masked"
    sandbox.add_pipeline("Xero invoices", STAGES)
    pipedrive_setup.create_recommended_fields(sync_pair)
    oracle = sandbox.create_contact("Oracle Alpha Ltd", email="accounts@oracle-alpha.example")
    other = sandbox.create_contact("Beta Borealis Ltd")
    invoice = sandbox.create_invoice(oracle, amount=1200)
    sync_records(sync_pair, "CONTACT", [oracle, other])
    sync_records(sync_pair, "INVOICE", [invoice, sandbox.create_invoice(other, amount=90)])
    sandbox.pay(invoice, 200)
    sync_records(sync_pair, "INVOICE", [invoice])
    number = sandbox.xero_invoice(invoice).invoice_number

    log_in(page, live_server.url, "/admin/audit/syncrecord/", "fiona", STAFF_PASSWORD)
    page.wait_for_url(re.compile(r"/audit/syncrecord/"))
    page.fill("#searchbar", "Oracle Alpha")
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"q=Oracle"))
    rows = page.locator("#result_list tbody tr")
    listed = rows.count()  # the contact and its invoice's syncs, and not the other customer
    assert listed >= 3
    assert "Beta Borealis" not in page.locator("#result_list").inner_text()
    assert "•" not in page.locator("#result_list").inner_text()
    screenshot(page, "audit-search-list")

    page.locator("#result_list tbody tr").first.get_by_role("link", name=f"Invoice {number}").click()
    page.wait_for_url(re.compile(r"/change/"))
    assert "Xero amount due" in page.locator("#changed-fields").inner_text()
    assert page.locator("#changed-fields .audit-changed").count() >= 1
    page.locator("#unchanged-fields summary").click()
    assert "Xero invoice number" in page.locator("#unchanged-fields").inner_text()
    screenshot(page, "audit-search-story")

    page.click("#timeline-link")
    page.wait_for_url(re.compile(r"/customer/"))
    assert page.locator("#timeline tbody tr").count() == listed
    assert "Every sync of Oracle Alpha Ltd" in page.content()
    screenshot(page, "audit-search-timeline")
