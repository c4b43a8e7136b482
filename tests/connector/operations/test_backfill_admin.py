"""The backfill page in the admin and ``manage.py backfill``, against the sandboxes."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from connector.models import BackfillRun
from mapping.models import RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def admin_client_(client, db):
    user = get_user_model().objects.create_superuser("finance", "finance@example.com", "pw-not-used")
    client.force_login(user)
    return client


def test_admin_preview_confirmation_with_a_choice_then_progress(
    admin_client_, sync_pair, sandbox, default_rules
):
    sandbox.add_pipeline("Xero invoices", STAGES)
    older = sandbox.pipedrive_create("organization", {"name": "Kiwi Traders Ltd"})
    newer = sandbox.pipedrive_create("organization", {"name": "KIWI TRADERS LIMITED"})
    kiwi = sandbox.create_contact("Kiwi Traders Limited")
    sandbox.create_invoice(kiwi, amount=120)
    url = reverse("admin:connector_syncpair_backfill", args=[sync_pair.pk])

    page = admin_client_.get(url)
    assert page.status_code == 200 and b"Preview the backfill" in page.content
    change = admin_client_.get(reverse("admin:connector_syncpair_change", args=[sync_pair.pk]))
    assert url.encode() in change.content  # the pair's page links to it

    response = admin_client_.post(url, {"action": "preview", "since": "not a date"})
    assert not BackfillRun.objects.exists()  # refused, nothing started
    assert b"not a date" in admin_client_.get(response.url).content

    admin_client_.post(url, {"action": "preview"})  # the task runs inline in tests
    run = BackfillRun.objects.get()
    assert run.status == "previewed"
    page = admin_client_.get(url).content.decode()
    assert "Organizations matched by normalized name" in page and "Ambiguous matches (1)" in page
    assert f"Pipedrive #{older}" in page and f"Pipedrive #{newer}" in page
    assert sandbox.counts().pipedrive_writes == 0

    admin_client_.post(url, {"action": "confirm", f"choice-{kiwi}": str(newer)})
    run.refresh_from_db()
    assert run.status == "done", run.state_message
    link = RecordLink.objects.get(pair=sync_pair, xero_type="contact", xero_id=kiwi)
    assert link.pipedrive_id == newer  # the admin's pick, not the oldest
    page = admin_client_.get(url).content.decode()
    assert "Finished" in page and "Records done" in page
    progress = admin_client_.get(
        reverse("admin:connector_syncpair_backfill_progress", args=[sync_pair.pk])
    ).json()
    assert progress["status"] == "done" and progress["done"] == progress["total"] == 2


def test_manage_py_backfill_dry_run_then_run(sync_pair, sandbox, default_rules):
    sandbox.add_pipeline("Xero invoices", STAGES)
    for name in ("Alpha Ltd", "Beta Ltd"):
        sandbox.create_invoice(sandbox.create_contact(name), amount=10)
    out = io.StringIO()
    call_command("backfill", str(sync_pair.pk), "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Organizations to create" in text and "Dry run only: nothing written" in text
    assert sandbox.organizations() == []
    with pytest.raises(CommandError, match="not a date"):
        call_command("backfill", sync_pair.name, "--since", "31/12/2025", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No sync pair"):
        call_command("backfill", "no such pair", stdout=io.StringIO())

    out = io.StringIO()
    call_command("backfill", sync_pair.name, "--no-progress", stdout=out)
    assert "Finished" in out.getvalue()
    assert len(sandbox.organizations()) == 2 and len(sandbox.deals()) == 2
