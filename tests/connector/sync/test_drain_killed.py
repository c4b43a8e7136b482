"""A worker killed in the middle of a drain, and a drain that runs out of time: records already synced
are finished at once and never synced again; a lost claim is not counted as a failed try."""

import contextlib
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from audit.models import SyncRecord
from connector.clients.pipedrive import PipedriveClient
from connector.errors import ServerError
from connector.intake import drain
from connector.models import WebhookEvent
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


class WorkerKilled(BaseException):
    """Stands for kill -9: nothing after it runs (not even ``except Exception`` handlers)."""


def contact_events(sandbox, pair, names):
    ids = [sandbox.create_contact(name) for name in names]
    for n, contact_id in enumerate(ids):
        WebhookEvent.objects.create(
            pair=pair, source="xero", tenant_id=str(sandbox.organisation.tenant_id), category="CONTACT",
            resource_id=contact_id, event_type="UPDATE", event_time=timezone.now() + timedelta(seconds=n),
        )  # fmt: skip
    return ids


def syncs_per_contact(pair) -> dict[str, int]:
    rows = SyncRecord.objects.filter(pair=pair, xero_type="contact").values("xero_id").annotate(n=Count("id"))
    return {row["xero_id"]: row["n"] for row in rows}


def test_a_worker_killed_mid_batch_leaves_only_the_unfinished_records_to_redo(
    sync_pair, sandbox, monkeypatch, settings
):
    ids = contact_events(sandbox, sync_pair, ["Killed One Ltd", "Killed Two Ltd", "Killed Three Ltd"])
    original = PipedriveClient.create

    def create(self, entity, data):
        if data.get("name") == "Killed Three Ltd":
            raise WorkerKilled()
        return original(self, entity, data)

    monkeypatch.setattr(PipedriveClient, "create", create)
    with pytest.raises(WorkerKilled):
        drain.drain_pair(sync_pair.pk)
    status = dict(WebhookEvent.objects.values_list("resource_id", "status"))
    assert [status[i] for i in ids] == ["done", "done", "processing"]

    # The lease runs out, the sweep hands the row to a new drain.
    monkeypatch.setattr(PipedriveClient, "create", original)
    settings.INBOX_CLAIM_LEASE_SECONDS = 0
    drain.sweep_inbox()

    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"done"}
    assert syncs_per_contact(sync_pair) == {ids[0]: 1, ids[1]: 1, ids[2]: 1}
    assert sorted(o["name"] for o in sandbox.organizations()) == [
        "Killed One Ltd", "Killed Three Ltd", "Killed Two Ltd",
    ]  # fmt: skip
    assert list(WebhookEvent.objects.values_list("attempts", flat=True)) == [0, 0, 0]


def test_a_record_that_stops_its_worker_every_time_is_given_up_and_holds_up_no_other(
    sync_pair, sandbox, monkeypatch, settings
):
    settings.INBOX_MAX_LOST_CLAIMS = 5
    names = ["Fine One Ltd", "Poison Pill Ltd", "Fine Two Ltd", "Fine Three Ltd"]
    ids = contact_events(sandbox, sync_pair, names)
    original = PipedriveClient.create
    kills = []

    def create(self, entity, data):
        if data.get("name") == "Poison Pill Ltd":
            kills.append(data["name"])
            raise WorkerKilled()
        return original(self, entity, data)

    monkeypatch.setattr(PipedriveClient, "create", create)
    with pytest.raises(WorkerKilled):
        drain.drain_pair(sync_pair.pk)  # the batch: one done, the poison kills, two left behind
    settings.INBOX_CLAIM_LEASE_SECONDS = 0
    for _ in range(10):  # the sweep every minute; its drain runs inline here, and may be killed
        with contextlib.suppress(WorkerKilled):
            drain.sweep_inbox()

    events = {e.resource_id: e for e in WebhookEvent.objects.all()}
    poison = events[ids[1]]
    assert poison.status == "failed" and poison.lost_claims == 5
    assert "lost 5 times" in poison.reason and "reprocess" in poison.reason
    assert len(kills) == 5  # in the batch twice, then with fewer others, then alone; then given up
    assert max(events[i].lost_claims for i in (ids[0], ids[2], ids[3])) <= 3
    assert [events[i].status for i in (ids[0], ids[2], ids[3])] == ["done", "done", "done"]
    assert syncs_per_contact(sync_pair) == {ids[0]: 1, ids[2]: 1, ids[3]: 1}
    assert sorted(o["name"] for o in sandbox.organizations()) == [
        "Fine One Ltd",
        "Fine Three Ltd",
        "Fine Two Ltd",
    ]

    # Once what stopped the workers is fixed, reprocessing the event syncs it.
    monkeypatch.setattr(PipedriveClient, "create", original)
    WebhookEvent.objects.filter(pk=poison.pk).update(status="pending", lost_claims=0, reason="")
    drain.drain_pair(sync_pair.pk)
    assert WebhookEvent.objects.get(pk=poison.pk).status == "done"
    assert len(sandbox.organizations()) == 4


def test_a_drain_out_of_time_hands_the_rest_to_the_next_drain(sync_pair, sandbox, monkeypatch, settings):
    settings.INBOX_DRAIN_SECONDS = 1
    ids = contact_events(sandbox, sync_pair, [f"Slow Trading {n} Ltd" for n in range(4)])
    original = PipedriveClient.create
    drains = []

    def slow_create(self, entity, data):
        time.sleep(0.6)  # the drain's second ends after one or two contacts
        return original(self, entity, data)

    def counting_drain(pair_id):
        drains.append(pair_id)
        return drain.drain_pair(pair_id)

    monkeypatch.setattr(PipedriveClient, "create", slow_create)
    monkeypatch.setattr("connector.tasks.drain_pair", counting_drain)  # the next drain, run inline

    report = drain.drain_pair(sync_pair.pk)

    assert report["handed_over"] and report["done"] >= 1, report
    assert report["done"] + report["released"] == 4 and report["released"] >= 1, report
    assert len(drains) >= 1  # the rest went to new drains, not waited out
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"done"}
    assert syncs_per_contact(sync_pair) == dict.fromkeys(ids, 1)
    assert len(sandbox.organizations()) == 4


def test_attempts_count_failed_tries_not_claims(sync_pair, sandbox, monkeypatch, settings):
    settings.INBOX_MAX_ATTEMPTS = 2
    contact_events(sandbox, sync_pair, ["Flaky Foods Ltd"])
    row = WebhookEvent.objects.get()
    # Claimed and lost three times (killed workers): still two tries to go.
    for _ in range(3):
        drain.claim_pending(sync_pair.pk, 10)
        WebhookEvent.objects.update(status="pending", claim_token="", claimed_at=None)
    monkeypatch.setattr(PipedriveClient, "create", lambda *a, **k: (_ for _ in ()).throw(ServerError("503")))
    settings.API_MAX_RETRIES = 0

    drain.drain_pair(sync_pair.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1), row.reason
    assert row.reason.startswith("will retry (attempt 1 of 2)")

    drain.drain_pair(sync_pair.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.reason.startswith("gave up after 2 attempts")
