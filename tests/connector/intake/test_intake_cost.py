"""The cheap intake path: a narrow pair lookup, one raw insert, the drain flag set in the same transaction."""

import datetime as dt
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connector.intake import inbox
from connector.models import SyncPair, WebhookEvent
from tests.connector.webhook_helpers import (
    COMPANY,
    PD_PASSWORD,
    PD_SIGNING_SECRET,
    XERO_KEY,
    basic,
    encode,
    pipedrive_v2,
    xero_batch,
    xero_event,
    xero_headers,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=dt.UTC)  # Xero writes milliseconds


def deliver(client, pair, body, key=XERO_KEY):
    return client.post(
        reverse("webhooks:xero", args=[pair.key]),
        data=body,
        content_type="application/json",
        headers=xero_headers(body, key=key),
    )


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "connector.intake.inbox.drain_requests.async_task",
        lambda func, *args, **kw: calls.append((func, args)),
    )
    return calls


def test_rows_read_back_as_the_orm_stores_them(client, pair):
    pending = xero_event("c-1", when=T0)
    ignored = xero_event("item-1", category="ITEM", when=T0)
    before = timezone.now()
    assert deliver(client, pair, xero_batch(pending, ignored)).status_code == 200
    rows = {row.resource_id: row for row in WebhookEvent.objects.filter(pair=pair)}
    assert rows["c-1"].payload == pending and rows["item-1"].payload == ignored
    for row in rows.values():
        assert row.event_time == T0
        assert before <= row.received_at <= timezone.now()
        assert (row.attempts, row.claim_token, row.claimed_at) == (0, "", None)
    assert rows["c-1"].processed_at is None
    assert before <= rows["item-1"].processed_at <= timezone.now()
    # The ORM's own representation of the key finds the rows (same time format, same JSON column).
    assert WebhookEvent.objects.filter(event_time=T0, payload__resourceId="c-1").count() == 1
    duplicate = WebhookEvent(
        pair=pair,
        source="xero",
        tenant_id=rows["c-1"].tenant_id,
        category="CONTACT",
        resource_id="c-1",
        event_type="UPDATE",
        event_time=T0,
    )
    assert WebhookEvent.objects.bulk_create([duplicate], ignore_conflicts=True)
    assert WebhookEvent.objects.filter(pair=pair).count() == 2  # the ORM's insert hit the same unique key


def test_xero_lookup_reads_no_pipedrive_secret(client, pair):
    body = xero_batch(xero_event("c-1"))
    with CaptureQueriesContext(connection) as queries:
        assert deliver(client, pair, body).status_code == 200
    lookup = queries.captured_queries[0]["sql"]
    assert "xero_webhook_key" in lookup and "pipedrive" not in lookup


def test_pipedrive_lookup_reads_no_xero_secret(client, pair):
    pair.pipedrive_signing_secret = ""
    pair.save()
    body = encode(pipedrive_v2())
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            reverse("webhooks:pipedrive", args=[pair.key]),
            data=body,
            content_type="application/json",
            headers=basic(),
        )
    assert response.status_code == 200
    lookup = queries.captured_queries[0]["sql"]
    assert "pipedrive_webhook_password" in lookup and "xero" not in lookup
    assert WebhookEvent.objects.get(pair=pair).tenant_id == str(COMPANY)


def test_find_pair_reads_only_enabled_pairs_and_the_sources_fields(pair):
    pair.pipedrive_signing_secret = PD_SIGNING_SECRET
    pair.save()
    xero = inbox.find_pair(pair.key, "xero")
    assert (xero.pk, xero.xero_webhook_key, xero.xero_tenant_id) == (pair.pk, XERO_KEY, "tenant-1")
    assert xero.pipedrive_webhook_password == ""
    pipedrive = inbox.find_pair(pair.key, "pipedrive")
    assert pipedrive.pipedrive_webhook_password == PD_PASSWORD
    assert pipedrive.pipedrive_signing_secret == PD_SIGNING_SECRET
    assert pipedrive.pipedrive_company_id == str(COMPANY) and pipedrive.xero_webhook_key == ""
    assert inbox.find_pair("no-such-key", "xero") is None
    SyncPair.objects.filter(pk=pair.pk).update(enabled=False)
    assert inbox.find_pair(pair.key, "xero") is None


def test_a_changed_webhook_key_applies_to_the_next_request(client, pair):
    assert deliver(client, pair, xero_batch(xero_event("c-1"))).status_code == 200
    pair.xero_webhook_key = "a-new-key"
    pair.save()
    assert deliver(client, pair, xero_batch(xero_event("c-2"))).status_code == 401
    assert deliver(client, pair, xero_batch(xero_event("c-3")), key="a-new-key").status_code == 200
    assert set(WebhookEvent.objects.values_list("resource_id", flat=True)) == {"c-1", "c-3"}


def flag(pair):
    return SyncPair.objects.get(pk=pair.pk).drain_requested_at


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the in-transaction flag is SQLite's path")
def test_on_sqlite_the_flag_is_set_in_the_batchs_transaction_and_enqueued_once(
    client, pair, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert deliver(client, pair, xero_batch(xero_event("c-1"))).status_code == 200
        assert flag(pair) is not None  # set before the commit, by the batch's own transaction
        assert deliver(client, pair, xero_batch(xero_event("c-2"))).status_code == 200
        # Only ignored events: no drain is asked for.
        assert deliver(client, pair, xero_batch(xero_event("i-1", category="ITEM"))).status_code == 200
    assert len(callbacks) == 1  # the second batch found a drain on its way: nothing to do after its commit
    assert sent == []
    callbacks[0]()
    assert sent == [("connector.tasks.drain_pair", (pair.pk,))]


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the in-transaction flag is SQLite's path")
def test_on_sqlite_a_stale_request_is_renewed_by_the_next_batch(
    client, pair, sent, django_capture_on_commit_callbacks
):
    old = timezone.now() - timedelta(hours=1)
    SyncPair.objects.filter(pk=pair.pk).update(drain_requested_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, pair, xero_batch(xero_event("c-1"))).status_code == 200
    assert flag(pair) > old
    assert sent == [("connector.tasks.drain_pair", (pair.pk,))]


@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="PostgreSQL keeps the check after the commit")
def test_on_postgresql_the_flag_is_checked_after_the_commit(
    client, pair, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert deliver(client, pair, xero_batch(xero_event("c-1"))).status_code == 200
        assert flag(pair) is None
    assert len(callbacks) == 1
    callbacks[0]()
    assert flag(pair) is not None
    assert sent == [("connector.tasks.drain_pair", (pair.pk,))]
