"""A finance user's morning, in Chromium: the admin home shows a failed invoice sync, its story says
the stage is missing and where to fix it; the user fixes the stage mapping, replays the record with
one click and sees it succeed. Screenshots: the health page, the sync record list, the story pages."""

import re

import pytest
from django.utils import timezone

from audit.models import SyncRecord
from connector.intake.drain import drain_pair
from connector.models import WebhookEvent
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


@pytest.fixture
def failed_invoice(sync_pair, sandbox):  # noqa: F811
    """An invoice whose sync failed through the inbox: the stage it maps to does not exist."""
    contact_id = sandbox.create_contact("Harbour Supplies Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=1250)
    WebhookEvent.objects.create(
        pair=sync_pair,
        source=WebhookEvent.Source.XERO,
        tenant_id=str(sandbox.organisation.tenant_id),
        category="INVOICE",
        resource_id=invoice_id,
        event_type="CREATE",
        event_time=timezone.now(),
    )
    drain_pair(sync_pair.pk)
    assert SyncRecord.objects.get(xero_id=invoice_id).outcome == "failed"
    return invoice_id, sandbox.xero_invoice(invoice_id).invoice_number


def test_finance_sees_a_failure_fixes_the_stage_and_replays_it(
    page,
    screenshot,
    live_server,
    finance_user,
    failed_invoice,
    sandbox,  # noqa: F811
):
    invoice_id, number = failed_invoice
    log_in(page, live_server.url, "/admin/", "fiona", STAFF_PASSWORD)

    # The admin home opens on the health summary: the failure is there.
    summary = page.locator("#health-summary")
    failures = summary.locator(".health-figure", has_text="Failures (24 h)")
    assert failures.locator(".value").inner_text() == "1"
    page.goto(f"{live_server.url}/admin/health/")
    assert "/admin/connector/xeroconnection/" not in page.content()  # not finance's pages: no link
    screenshot(page, "health-page")

    page.locator(".health-figure", has_text="Failures (24 h)").locator("a").click()
    page.wait_for_url(re.compile(r"/audit/syncrecord/\?"))
    assert page.locator("#result_list tbody tr").count() == 1
    screenshot(page, "sync-record-list")

    page.get_by_role("link", name=f"Invoice {number}").click()
    page.wait_for_url(re.compile(r"/change/"))
    story_url = page.url
    assert "What to do next" in page.content() and "Xero invoices" in page.content()
    screenshot(page, "story-failed")

    # The fix: the default stage mapping for approved invoices points at the company's "Sales" pipeline.
    page.locator(".audit-next").get_by_role("link", name="Stage mappings").click()
    page.wait_for_url(re.compile(r"/mapping/stagemapping/(\?|$)"))
    page.locator("#result_list tr", has_text="AUTHORISED").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/change/"))
    page.fill("#id_pipeline_name", "Sales")
    page.fill("#id_stage_name", "Invoice sent")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/mapping/stagemapping/(\?|$)"))
    assert "was changed successfully" in page.content()

    page.goto(story_url)
    page.click("#replay-button")
    page.wait_for_selector(".messagelist")
    assert "Replayed from Xero's current data" in page.content()
    assert page.locator("h1 .audit-created").count() == 1
    assert "This is a replay of" in page.content()
    screenshot(page, "story-replayed")

    [deal] = sandbox.deals()
    assert sandbox.stage_name(deal["stage_id"]) == "Invoice sent" and float(deal["value"]) == 1250
    replayed = SyncRecord.objects.filter(xero_id=invoice_id).latest("id")
    assert replayed.replay_of.outcome == "failed" and replayed.pipedrive_id == deal["id"]
