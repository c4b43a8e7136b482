"""The drain and the sweep: coalescing, order, outcomes, whole-batch errors, claims and lost work."""

import datetime as dt
import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, RateLimited, ServerError
from connector.intake import drain, inbox
from connector.models import ConnectionStatus, SyncPair, WebhookEvent
from tests.connector.webhook_helpers import Outcome, xero_batch, xero_event, xero_headers

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def deliver(client, pair, body):
    response = client.post(
        reverse("webhooks:xero", args=[pair.key]),
        data=body,
        content_type="application/json",
        headers=xero_headers(body),
    )
    assert response.status_code == 200


def add_rows(pair, *specs, status="pending", **fields):
    """Inbox rows directly: (category, resource id[, event type]) each, one second apart."""
    rows = []
    for n, spec in enumerate(specs):
        category, resource_id, *rest = spec
        rows.append(
            WebhookEvent.objects.create(
                pair=pair,
                source="xero",
                tenant_id="tenant-1",
                category=category,
                resource_id=resource_id,
                event_type=rest[0] if rest else "UPDATE",
                event_time=T0 + timedelta(seconds=n),
                status=status,
                **fields,
            )
        )
    return rows


def statuses(pair):
    return dict(WebhookEvent.objects.filter(pair=pair).values_list("resource_id", "status"))


def test_ten_events_for_one_contact_in_reverse_order_make_one_sync(
    client, pair, fake_sync, django_capture_on_commit_callbacks
):
    events = [xero_event("contact-1", when=T0 + timedelta(minutes=n)) for n in reversed(range(10))]
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:  # ten deliveries, newest first
            deliver(client, pair, xero_batch(event))
    assert fake_sync.calls == [("CONTACT", ["contact-1"])]
    rows = WebhookEvent.objects.filter(pair=pair)
    assert rows.count() == 10
    assert set(rows.values_list("status", "reason")) == {("done", "synced contact-1")}
    assert all(row.processed_at and row.attempts == 0 for row in rows)  # no failed try


def test_one_batch_three_times_then_drained_once(client, pair, fake_sync, django_capture_on_commit_callbacks):
    body = xero_batch(xero_event("c-1"), xero_event("c-2"), xero_event("i-1", category="INVOICE"))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            deliver(client, pair, body)
    assert WebhookEvent.objects.count() == 3
    assert fake_sync.calls == [("CONTACT", ["c-1", "c-2"]), ("INVOICE", ["i-1"])]


def test_contacts_then_invoices_then_payments(pair, fake_sync):
    add_rows(
        pair, ("PAYMENT", "p-1"), ("INVOICE", "i-1"), ("CONTACT", "c-1"), ("INVOICE", "i-2"), ("ITEM", "x")
    )
    report = drain.drain_pair(pair.pk)
    assert fake_sync.calls == [("CONTACT", ["c-1"]), ("INVOICE", ["i-1", "i-2"]), ("PAYMENT", ["p-1"])]
    assert statuses(pair) == {"p-1": "done", "i-1": "done", "c-1": "done", "i-2": "done", "x": "ignored"}
    assert report["claimed"] == 5 and report["done"] == 4 and report["ignored"] == 1


def test_outcomes_per_resource_and_missing_ones(pair, fake_sync):
    add_rows(
        pair,
        ("CONTACT", "ok"),
        ("CONTACT", "bad"),
        ("CONTACT", "skip"),
        ("CONTACT", "lost"),
        ("CONTACT", "ok"),
    )
    fake_sync.outcome_for = {
        "bad": Outcome("failed", "Pipedrive refused the name"),
        "skip": Outcome("ignored", "archived contact"),
        "lost": None,
    }
    drain.drain_pair(pair.pk)
    rows = {(r.resource_id, r.status, r.reason) for r in WebhookEvent.objects.all()}
    assert rows == {
        ("ok", "done", "synced ok"),
        ("bad", "failed", "Pipedrive refused the name"),
        ("skip", "ignored", "archived contact"),
        ("lost", "failed", "no outcome"),
    }
    assert fake_sync.calls == [("CONTACT", ["ok", "bad", "skip", "lost"])]


def test_xero_delete_events_still_go_through_the_sync(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1", "DELETE"), ("INVOICE", "i-1", "DELETE"))
    drain.drain_pair(pair.pk)
    assert fake_sync.calls == [("CONTACT", ["c-1"]), ("INVOICE", ["i-1"])]


def test_a_failing_category_does_not_stop_the_others(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"), ("INVOICE", "i-1"), ("PAYMENT", "p-1"))
    fake_sync.raise_for["INVOICE"] = RuntimeError("mapping exploded")
    report = drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "done", "i-1": "failed", "p-1": "done"}
    assert WebhookEvent.objects.get(resource_id="i-1").reason == "RuntimeError: mapping exploded"
    assert report["failed"] == 1 and report["done"] == 2


def test_a_failure_reason_never_holds_a_token(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    fake_sync.raise_for["CONTACT"] = ValueError("POST /token refresh_token=abcdefghijkl failed")
    drain.drain_pair(pair.pk)
    reason = WebhookEvent.objects.get().reason
    assert reason.startswith("ValueError: ") and "abcdefghijkl" not in reason


def test_rate_limited_puts_rows_back_and_schedules_a_drain(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"), ("INVOICE", "i-1"), ("PAYMENT", "p-1"))
    fake_sync.raise_for["INVOICE"] = RateLimited(retry_after=90)
    before = timezone.now()
    report = drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "done", "i-1": "pending", "p-1": "pending"}
    assert "rate limited" in WebhookEvent.objects.get(resource_id="p-1").reason
    assert report["released"] == 2 and "rate limited" in report["stopped_by"]
    later = Schedule.objects.get(name=f"connector: drain pair {pair.pk} later")
    assert later.func == "connector.tasks.drain_pair" and later.args == f"({pair.pk},)"
    assert before + timedelta(seconds=89) < later.next_run < timezone.now() + timedelta(seconds=91)
    # The sweep leaves a pair waiting out its limit alone.
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))
    assert drain.sweep_inbox()["drains_requested"] == 0
    # The scheduled drain, once the limit has passed, finishes the work.
    fake_sync.raise_for.clear()
    drain.drain_pair(pair.pk)
    assert set(statuses(pair).values()) == {"done"}


def test_budget_exhausted_waits_for_the_reset(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    resets_at = timezone.now() + timedelta(hours=5)
    fake_sync.raise_for["CONTACT"] = BudgetExhausted(resets_at)
    drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "pending"}
    assert Schedule.objects.get(name=f"connector: drain pair {pair.pk} later").next_run == resets_at


def test_a_broken_connection_keeps_rows_pending_until_reconnected(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"), ("INVOICE", "i-1"))
    fake_sync.raise_for["CONTACT"] = ConnectionBroken("Demo Org", "refresh token expired")
    drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "pending", "i-1": "pending"}
    assert "connection broken" in WebhookEvent.objects.get(resource_id="i-1").reason
    assert not Schedule.objects.filter(name__startswith="connector: drain pair").exists()
    # While the connection is marked broken, the sweep does not retry; after the reconnect it does.
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))
    pair.xero_connection.status = ConnectionStatus.BROKEN
    pair.xero_connection.save()
    fake_sync.raise_for.clear()
    assert drain.sweep_inbox()["drains_requested"] == 0
    pair.xero_connection.status = ConnectionStatus.ACTIVE
    pair.xero_connection.save()
    assert drain.sweep_inbox()["drains_requested"] == 1  # sync mode: the drain ran inline
    assert set(statuses(pair).values()) == {"done"}


def test_a_drain_keeps_claiming_until_nothing_is_pending(pair, fake_sync, settings):
    settings.INBOX_CLAIM_BATCH = 2
    add_rows(pair, *[("CONTACT", f"c-{n}") for n in range(5)])
    report = drain.drain_pair(pair.pk)
    assert report["claimed"] == 5 and len(fake_sync.calls) == 3
    assert set(statuses(pair).values()) == {"done"}


def test_a_disabled_pair_is_not_drained(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    SyncPair.objects.filter(pk=pair.pk).update(enabled=False)
    drain.drain_pair(pair.pk)
    assert fake_sync.calls == [] and statuses(pair) == {"c-1": "pending"}


def test_drain_requests_are_not_repeated_until_a_drain_starts(pair, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "connector.intake.inbox.drain_requests.async_task",
        lambda func, *args, **kw: sent.append((func, args)),
    )
    assert inbox.request_drain(pair.pk) is True
    assert inbox.request_drain(pair.pk) is False  # one is on its way
    assert sent == [("connector.tasks.drain_pair", (pair.pk,))]
    drain.drain_pair(pair.pk)  # starting clears the request
    assert inbox.request_drain(pair.pk) is True
    # A request older than the sweep delay counts as lost and is sent again.
    SyncPair.objects.filter(pk=pair.pk).update(drain_requested_at=timezone.now() - timedelta(hours=1))
    assert inbox.request_drain(pair.pk) is True
    assert len(sent) == 3


def test_sweep_requeues_old_pending_rows_and_expired_claims(pair, fake_sync, settings):
    settings.INBOX_SWEEP_AFTER_SECONDS = 120
    settings.INBOX_CLAIM_LEASE_SECONDS = 300
    _fresh, old = add_rows(pair, ("CONTACT", "fresh"), ("CONTACT", "old"))
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    # A lost broker message: the drain was requested but never ran.
    SyncPair.objects.filter(pk=pair.pk).update(drain_requested_at=timezone.now() - timedelta(minutes=5))
    (stuck,) = add_rows(pair, ("INVOICE", "stuck"), status="processing", claim_token="dead")
    WebhookEvent.objects.filter(pk=stuck.pk).update(claimed_at=timezone.now() - timedelta(minutes=6))
    (busy,) = add_rows(pair, ("INVOICE", "busy"), status="processing", claim_token="alive")
    WebhookEvent.objects.filter(pk=busy.pk).update(claimed_at=timezone.now() - timedelta(minutes=1))

    result = drain.sweep_inbox()

    assert result == {"expired_claims": 1, "drains_requested": 1}
    assert statuses(pair) == {"fresh": "done", "old": "done", "stuck": "done", "busy": "processing"}
    # Re-claimed after the lost worker and synced: a lost claim is not a failed try.
    assert WebhookEvent.objects.get(resource_id="stuck").attempts == 0


def test_sweep_leaves_recent_work_to_its_drain(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    assert drain.sweep_inbox() == {"expired_claims": 0, "drains_requested": 0}
    assert fake_sync.calls == []


def test_the_sweep_is_scheduled_every_minute():
    sweep = Schedule.objects.get(name="connector: sweep the webhook inbox")
    assert (sweep.func, sweep.schedule_type, sweep.minutes, sweep.repeats) == (
        "connector.tasks.sweep_inbox",
        Schedule.MINUTES,
        1,
        -1,
    )


def test_task_entry_points_call_the_services(pair, fake_sync):
    from connector import tasks

    add_rows(pair, ("CONTACT", "c-1"))
    assert tasks.drain_pair(pair.pk)["done"] == 1
    assert tasks.sweep_inbox() == {"expired_claims": 0, "drains_requested": 0}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_never_process_the_same_row_on_postgresql(pair, fake_sync, settings, monkeypatch):
    if db_connection.vendor != "postgresql":
        pytest.skip("skip-locked claiming needs PostgreSQL (DATABASE_URL)")
    settings.INBOX_CLAIM_BATCH = 7
    add_rows(pair, *[("CONTACT", f"c-{n:03}") for n in range(120)])
    seen: list[str] = []
    lock = threading.Lock()
    original = fake_sync.__call__

    def slow_sync(pair_, category, ids, trigger="webhook", on_outcome=None):
        with lock:
            seen.extend(ids)
        threading.Event().wait(0.01)  # hold the claim a moment so the other drain must skip it
        return original(pair_, category, ids, trigger)

    drain_calls = []

    def run():
        try:
            # The claims alone, without the per-pair drain lock that would run the drains in turn.
            drain_calls.append(drain._drain(pair.pk))
        finally:
            connections.close_all()

    monkeypatch.setattr(drain, "_sync_records", slow_sync)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(seen) == 120 and len(set(seen)) == 120, "a row was processed twice or not at all"
    assert sum(report["claimed"] for report in drain_calls) == 120
    assert set(statuses(pair).values()) == {"done"}
    assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {0}  # claimed once, no failed try


def test_a_reprocessed_row_of_another_tenant_is_ignored_again(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    WebhookEvent.objects.update(tenant_id="someone-else")
    drain.drain_pair(pair.pk)
    assert fake_sync.calls == []
    assert WebhookEvent.objects.get().reason == "the tenant is not joined to this pair"


def test_a_drain_whose_claim_was_taken_back_does_not_overwrite_the_new_claim(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"))
    first = drain.claim_pending(pair.pk, 10)
    # The lease expired (a slow worker), the sweep released the row and another drain claimed it.
    WebhookEvent.objects.update(status="pending", claim_token="")
    second = drain.claim_pending(pair.pk, 10)
    report = drain.DrainReport()
    drain._finish(first, "failed", "late answer of the first drain", report)
    row = WebhookEvent.objects.get()
    assert (row.status, row.claim_token, row.attempts) == ("processing", second[0].claim_token, 0)
    drain._finish(second, "done", "", report)
    assert WebhookEvent.objects.get().status == "done"


# ---------------------------------------------------------------- transient failures and one drain per pair


def test_a_transient_failure_is_retried_later_then_given_up(pair, fake_sync, settings):
    settings.INBOX_MAX_ATTEMPTS = 3
    add_rows(pair, ("CONTACT", "c-1"), ("CONTACT", "c-2"))
    fake_sync.outcome_for["c-1"] = Outcome("retry", "ServerError: Xero answered 503")
    before = timezone.now()
    report = drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "pending", "c-2": "done"}
    assert report["retried"] == 1 and len(fake_sync.calls) == 1  # not claimed again by this drain
    row = WebhookEvent.objects.get(resource_id="c-1")
    assert row.reason == "will retry (attempt 1 of 3): ServerError: Xero answered 503"
    later = Schedule.objects.get(name=f"connector: drain pair {pair.pk} later")
    assert before + timedelta(seconds=59) < later.next_run < timezone.now() + timedelta(seconds=61)
    drain.drain_pair(pair.pk)
    assert WebhookEvent.objects.get(resource_id="c-1").status == "pending"
    report = drain.drain_pair(pair.pk)
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 3 and report["retried"] == 0
    assert row.reason == "gave up after 3 attempts: ServerError: Xero answered 503"
    # It recovers once the service does.
    fake_sync.outcome_for.clear()
    WebhookEvent.objects.filter(pk=row.pk).update(status="pending")
    drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "done", "c-2": "done"}


def test_a_server_error_for_a_whole_category_is_retried_not_failed(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"), ("INVOICE", "i-1"))
    fake_sync.raise_for["CONTACT"] = ServerError("Xero answered 503 three times")
    report = drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "pending", "i-1": "done"}
    assert report["retried"] == 1 and "ServerError" in WebhookEvent.objects.get(resource_id="c-1").reason


def test_refused_credentials_stop_the_drain_and_keep_the_rows(pair, fake_sync):
    add_rows(pair, ("CONTACT", "c-1"), ("INVOICE", "i-1"))
    fake_sync.raise_for["CONTACT"] = AuthExpired("Pipedrive refused the API token")
    report = drain.drain_pair(pair.pk)
    assert statuses(pair) == {"c-1": "pending", "i-1": "pending"}
    assert "connection broken" in report["stopped_by"]


@pytest.mark.django_db(transaction=True)
def test_a_second_drain_of_a_pair_syncs_other_records_but_never_the_one_the_first_holds(
    pair, fake_sync, monkeypatch
):
    """Two drains of one pair run side by side, each record in one of them only: a newer change of
    the record the first drain is syncing waits for it (an older copy fetched by one drain must never
    overwrite a newer one written by the other), another record's change is synced at once."""
    add_rows(pair, ("CONTACT", "c-1"))
    first_in_sync, release_first = threading.Event(), threading.Event()
    spans = []
    original = fake_sync.__call__

    def blocking_sync(pair_, category, ids, trigger="webhook", on_outcome=None):
        spans.append(("start", tuple(ids)))
        if ids == ["c-1"] and not first_in_sync.is_set():
            first_in_sync.set()
            release_first.wait(10)
        spans.append(("end", tuple(ids)))
        return original(pair_, category, ids, trigger)

    monkeypatch.setattr(drain, "_sync_records", blocking_sync)
    reports = []

    def run():
        try:
            reports.append(drain.drain_pair(pair.pk))
        finally:
            connections.close_all()

    first = threading.Thread(target=run)
    first.start()
    assert first_in_sync.wait(10)
    # Arriving while the first drain syncs c-1: a newer change of c-1, and a change of c-2.
    newer, other = (
        WebhookEvent.objects.create(
            pair=pair, source="xero", tenant_id="tenant-1", category="CONTACT", resource_id=resource_id,
            event_type="UPDATE", event_time=T0 + timedelta(seconds=10 + n), status="pending",
        )
        for n, resource_id in enumerate(["c-1", "c-2"])
    )  # fmt: skip
    second = threading.Thread(target=run)
    second.start()
    second.join(10)
    assert not second.is_alive(), "the second drain must not wait for the first"
    assert spans == [("start", ("c-1",)), ("start", ("c-2",)), ("end", ("c-2",))]
    assert reports == [{**reports[0], "claimed": 1, "done": 1}]  # c-2 only
    newer.refresh_from_db()
    assert newer.status == "pending"  # c-1 is the first drain's until its sync ends
    release_first.set()
    first.join(10)
    # The first drain's next round took the newer change of c-1, after its first sync ended.
    assert spans[3:] == [("end", ("c-1",)), ("start", ("c-1",)), ("end", ("c-1",))]
    assert reports[1]["claimed"] == 2 and set(statuses(pair).values()) == {"done"}
    other.refresh_from_db()
    assert other.status == "done"


# ---------------------------------------------------------------- leases: a live drain keeps its claims


def test_a_live_drain_past_the_lease_keeps_its_claims_and_nothing_counts_as_lost(pair, monkeypatch, settings):
    """The killed-workers run gave up records "lost 5 times" though no worker had died 5 times: a
    slow live drain's rows ran past the lease, the sweep took them back as lost, again and again."""
    settings.INBOX_CLAIM_LEASE_SECONDS = 60
    settings.INBOX_SWEEP_AFTER_SECONDS = 120
    monkeypatch.setattr(drain, "renew_claims_every", lambda: 0.0)  # the two minutes below pass at once
    add_rows(pair, ("CONTACT", "c-1"), ("CONTACT", "c-2"))
    swept = []

    def slow_sync(pair, category, resource_ids, trigger="webhook", on_outcome=None):
        # Two minutes pass while c-1 syncs (the claim was made before them).
        WebhookEvent.objects.update(claimed_at=timezone.now() - timedelta(minutes=2))
        on_outcome("c-1", Outcome("done", "synced c-1"))
        swept.append(drain.sweep_inbox())  # the sweep runs while c-2 is still being synced
        on_outcome("c-2", Outcome("done", "synced c-2"))
        return {}

    monkeypatch.setattr(drain, "_sync_records", slow_sync)
    drain.drain_pair(pair.pk)

    assert swept == [{"expired_claims": 0, "drains_requested": 0}]
    assert statuses(pair) == {"c-1": "done", "c-2": "done"}
    assert set(WebhookEvent.objects.values_list("lost_claims", flat=True)) == {0}


def test_a_dead_drains_record_is_synced_once_by_the_next_drain_and_lost_once(pair, fake_sync, settings):
    settings.INBOX_CLAIM_LEASE_SECONDS = 60
    settings.INBOX_SWEEP_AFTER_SECONDS = 120
    add_rows(pair, ("CONTACT", "c-1"), ("CONTACT", "c-1"))
    drain.claim_pending(pair.pk, 10)  # the drain that claimed them was killed: nobody renews them
    assert drain.drain_pair(pair.pk)["claimed"] == 0  # its record is held until the lease runs out
    WebhookEvent.objects.update(claimed_at=timezone.now() - timedelta(minutes=2))

    for _ in range(3):  # more sweeps and drains after the one that takes the rows back
        drain.sweep_inbox()
        drain.drain_pair(pair.pk)

    assert fake_sync.calls == [("CONTACT", ["c-1"])]
    assert list(WebhookEvent.objects.values_list("status", "lost_claims")) == [("done", 1), ("done", 1)]


@pytest.mark.django_db(transaction=True)
def test_a_drain_blocked_inside_one_sync_keeps_its_claims_from_its_own_thread(pair, monkeypatch, settings):
    """A drain waiting inside one record's sync (a Xero call slot a killed worker still holds, a lock)
    reaches no point between records where it could renew its leases: its claim keeper thread does,
    so the sweep does not take the rows back as a lost worker's (the killed-workers run gave up four
    records "lost 5 times" so)."""
    settings.INBOX_CLAIM_LEASE_SECONDS = 60
    settings.INBOX_SWEEP_AFTER_SECONDS = 120
    monkeypatch.setattr(drain, "renew_claims_every", lambda: 0.05)
    add_rows(pair, ("CONTACT", "c-1"), ("CONTACT", "c-2"))
    long_ago = timezone.now() - timedelta(minutes=2)
    swept, renewed = [], threading.Event()

    def blocked_sync(pair, category, resource_ids, trigger="webhook", on_outcome=None):
        WebhookEvent.objects.update(claimed_at=long_ago)  # two minutes spent waiting in this sync
        for _ in range(200):  # until the keeper has renewed them (10 s at most)
            if not WebhookEvent.objects.filter(claimed_at=long_ago).exists():
                renewed.set()
                break
            threading.Event().wait(0.05)
        swept.append(drain.sweep_inbox())
        return {"c-1": Outcome("done", "synced c-1"), "c-2": Outcome("done", "synced c-2")}

    monkeypatch.setattr(drain, "_sync_records", blocked_sync)
    drain.drain_pair(pair.pk)

    assert renewed.is_set(), "the claims were not renewed while the drain waited"
    assert swept == [{"expired_claims": 0, "drains_requested": 0}]
    assert statuses(pair) == {"c-1": "done", "c-2": "done"}
    assert set(WebhookEvent.objects.values_list("lost_claims", flat=True)) == {0}
    assert not [t for t in threading.enumerate() if t.name == "drain-claim-keeper"]  # stopped with the drain
