"""Bulk replay in the background: 500 failed invoice syncs (no pipeline yet) are replayed, after the
pipeline is made, by one django-q2 task that saves its progress after every chunk, and end as 500
deals in the sandbox Pipedrive, none twice; a spent Pipedrive budget pauses a run until the reset."""

import pytest
from django.db.models import Count
from django.urls import reverse
from django_q.models import Task

from audit.models import ReplayRun, SyncRecord
from connector.limits.ratelimit import PipedriveLimiter
from connector.models import ApiRateWindow
from connector.operations import replay
from connector.sync import sync_records
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture(autouse=True)
def quick(settings):
    settings.API_MAX_RETRIES = 0


def failed_invoices(sync_pair, sandbox, count: int) -> list[str]:
    contact_id = sandbox.create_contact("Bulk Customer Ltd")
    sync_records(sync_pair, "CONTACT", [contact_id])
    ids = [sandbox.create_invoice(contact_id, amount=10 + n) for n in range(count)]
    sync_records(sync_pair, "INVOICE", ids)  # no "Xero invoices" pipeline: every one fails
    assert SyncRecord.objects.filter(xero_type="invoice", outcome="failed").count() == count
    return ids


def failed_pks() -> list[int]:
    return list(SyncRecord.objects.filter(outcome="failed").values_list("pk", flat=True))


def test_500_failures_replayed_in_the_background_with_progress(sync_pair, sandbox, admin_client, monkeypatch):
    ids = failed_invoices(sync_pair, sandbox, 500)
    sandbox.add_pipeline("Xero invoices", STAGES)
    progress = []
    original = replay.replay_records

    def noting_progress(records, replay_run=None):
        progress.append(ReplayRun.objects.get(pk=replay_run.pk).position)  # as the admin reads it
        return original(records, replay_run)

    monkeypatch.setattr(replay, "replay_records", noting_progress)
    confirm = admin_client.post(
        reverse("admin:audit_syncrecord_changelist") + "?outcome__exact=failed",
        {
            "action": "replay_selected",
            "_selected_action": failed_pks(),
        },
    )
    assert b"500</strong> Xero record(s)" in confirm.content and b"Pipedrive tokens" in confirm.content
    assert not ReplayRun.objects.exists()  # nothing runs before the confirmation

    done = admin_client.post(
        reverse("admin:audit_syncrecord_changelist"),
        {
            "action": "replay_selected",
            "confirmed": "yes",
            "_selected_action": failed_pks(),
        },
        follow=True,
    )

    run = ReplayRun.objects.get()
    assert (run.status, run.position, run.total, run.succeeded, run.failed) == ("done", 500, 500, 500, 0)
    assert progress == list(range(0, 500, replay.CHUNK))  # saved after each chunk of 50
    assert (
        Task.objects.filter(func="connector.operations.tasks.run_replay", success=True).count() == 1
    )  # a django-q2 task
    assert b"500 of 500" in done.content
    replays = SyncRecord.objects.filter(trigger="replay", xero_type="invoice")
    assert replays.filter(outcome="created").count() == 500
    assert replays.exclude(replay_of=None).count() == 500 and replays.filter(replay_run=run).count() == 500
    assert SyncRecord.objects.filter(outcome="failed").count() == 500  # history kept
    deals = sandbox.deals()
    assert len(deals) == 500
    assert len({d["title"] for d in deals}) == 500
    linked = SyncRecord.objects.filter(trigger="replay", xero_type="invoice").values("pipedrive_id")
    assert not linked.annotate(n=Count("id")).filter(n__gt=1).exists()
    assert sorted(ids) == sorted(replays.values_list("xero_id", flat=True))


def test_a_spent_budget_pauses_the_run_until_the_reset(sync_pair, sandbox, monkeypatch):
    failed_invoices(sync_pair, sandbox, 120)
    sandbox.add_pipeline("Xero invoices", STAGES)
    company = str(sync_pair.pipedrive_connection.company_id)
    original = replay.replay_records
    calls = []

    def spend_the_budget_after_the_first_chunk(records, replay_run=None):
        if len(calls) == 1:
            limiter = PipedriveLimiter(company)
            limiter.spend(limiter.remaining("daily-tokens"))
        calls.append(len(records))
        return original(records, replay_run)

    monkeypatch.setattr(replay, "replay_records", spend_the_budget_after_the_first_chunk)
    run = replay.start_bulk_replay(SyncRecord.objects.filter(outcome="failed"))
    run.refresh_from_db()

    assert run.status == "waiting" and run.position == 50 and run.resumes_at is not None
    assert "Resumes at" in run.message
    assert replay.resume_due_runs() == 0  # not before the reset

    ApiRateWindow.objects.filter(service="pipedrive").delete()  # the daily reset
    ReplayRun.objects.filter(pk=run.pk).update(resumes_at=run.resumes_at.replace(year=2000))
    assert replay.resume_due_runs() == 1
    run.refresh_from_db()
    assert (run.status, run.position, run.succeeded) == ("done", 120, 120)
    assert len(sandbox.deals()) == 120
