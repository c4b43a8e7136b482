"""Pipedrive events: v1 and v2 bodies (as the sandbox sends them) parsed alike; merges re-point links,
deletes drop or flag them per the pair option, everything else is acknowledged and ignored."""

import datetime as dt

import pytest
from django.urls import reverse

from connector.intake import drain
from connector.intake.pipedrive_events import (
    InvalidPipedriveBody,
    PipedriveEvent,
    apply_pipedrive_event,
    parse_pipedrive_body,
)
from connector.models import WebhookEvent
from mapping.models import RecordLink
from tests.connector.webhook_helpers import basic, encode, pipedrive_v1, pipedrive_v2

pytestmark = pytest.mark.django_db


def link(pair, xero_id, pipedrive_type, pipedrive_id, xero_type="contact"):
    return RecordLink.objects.create(
        pair=pair,
        xero_type=xero_type,
        xero_id=xero_id,
        pipedrive_type=pipedrive_type,
        pipedrive_id=pipedrive_id,
        payload_hash="abc123",
    )


def receive(client, pair, payload):
    response = client.post(
        reverse("webhooks:pipedrive", args=[pair.key]),
        data=encode(payload),
        content_type="application/json",
        headers=basic(),
    )
    assert response.status_code == 200


# ---------------------------------------------------------------- parsing


def test_v2_change_parses():
    event = parse_pipedrive_body(pipedrive_v2("deal", "change", 17, previous={"title": "old"}))
    assert (event.version, event.action, event.entity, event.entity_id, event.company_id) == (
        2,
        "change",
        "deal",
        "17",
        "1",
    )
    assert event.occurred_at.tzinfo is not None and event.previous == {"title": "old"}
    assert event.merged_to_id is None and event.merged_from_id is None


def test_v1_actions_map_to_v2_names():
    for v1_action, action in (
        ("added", "create"),
        ("updated", "change"),
        ("deleted", "delete"),
        ("merged", "merge"),
    ):
        event = parse_pipedrive_body(pipedrive_v1("person", v1_action, 5))
        assert (event.version, event.action, event.entity, event.entity_id) == (1, action, "person", "5")


def test_v1_uses_the_microsecond_timestamp():
    body = pipedrive_v1()
    body["meta"]["timestamp_micro"] = 1_763_900_000_123_456
    event = parse_pipedrive_body(body)
    assert event.occurred_at == dt.datetime.fromtimestamp(1_763_900_000.123456, tz=dt.UTC)


def test_timestamps_are_read_leniently():
    body = pipedrive_v2()
    for raw, expected in (
        (1727447128, dt.datetime(2024, 9, 27, 14, 25, 28, tzinfo=dt.UTC)),
        ("1727447128", dt.datetime(2024, 9, 27, 14, 25, 28, tzinfo=dt.UTC)),
        ("2024-09-27T14:25:28.500Z", dt.datetime(2024, 9, 27, 14, 25, 28, 500000, tzinfo=dt.UTC)),
    ):
        body["meta"]["timestamp"] = raw
        assert parse_pipedrive_body(body).occurred_at == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"meta": None},
        {"meta": {"action": "change", "entity": "deal", "entity_id": 1, "company_id": 1}},  # no timestamp
        {"event": "updated.deal", "meta": {"id": 1, "timestamp": 1}},  # no company
    ],
)
def test_bodies_that_are_neither_version_are_refused(body):
    with pytest.raises(InvalidPipedriveBody):
        parse_pipedrive_body(body)


# ---------------------------------------------------------------- applying


def test_v2_merge_repoints_links_to_the_survivor(client, pair, django_capture_on_commit_callbacks):
    merged = link(pair, "contact-a", "organization", 200)
    other = link(pair, "contact-b", "organization", 300)
    with django_capture_on_commit_callbacks(execute=True):
        # What the sandbox sends for PUT /organizations/200/merge {merge_with_id: 100}.
        receive(
            client, pair, pipedrive_v2("organization", "delete", 200, previous={"id": 200}, merged_to_id=100)
        )
        receive(client, pair, pipedrive_v2("organization", "change", 100, merged_from_id=200))
    merged.refresh_from_db()
    other.refresh_from_db()
    assert (merged.pipedrive_id, merged.state, merged.payload_hash) == (100, "linked", "")
    assert (other.pipedrive_id, other.payload_hash) == (300, "abc123")
    rows = dict(WebhookEvent.objects.values_list("event_type", "status"))
    assert rows == {"delete": "done", "change": "ignored"}  # the second finds the work already done
    assert "re-pointed" in WebhookEvent.objects.get(event_type="delete").reason


def test_deletes_are_flagged_by_default(client, pair, django_capture_on_commit_callbacks):
    deal = link(pair, "invoice-1", "deal", 55, xero_type="invoice")
    with django_capture_on_commit_callbacks(execute=True):
        receive(client, pair, pipedrive_v2("deal", "delete", 55, previous={"id": 55}))
    deal.refresh_from_db()
    assert deal.state == "deleted" and deal.pipedrive_id == 55
    assert WebhookEvent.objects.get().status == "done"


def test_deletes_drop_links_when_the_pair_says_so(client, pair, django_capture_on_commit_callbacks):
    pair.options = {**pair.options, "on_pipedrive_delete": "drop"}
    pair.save()
    link(pair, "contact-a", "person", 9, xero_type="contact_person")
    kept = link(pair, "contact-a", "organization", 9)  # same number, other type: untouched
    with django_capture_on_commit_callbacks(execute=True):
        receive(client, pair, pipedrive_v1("person", "deleted", 9, previous={"id": 9}))
    assert list(RecordLink.objects.values_list("pk", flat=True)) == [kept.pk]
    assert WebhookEvent.objects.get().reason == "delete: 1 link(s) of person 9 dropped"


def test_v1_merge_flags_the_merged_record_and_keeps_the_survivor(
    client, pair, django_capture_on_commit_callbacks
):
    loser = link(pair, "contact-a", "person", 20, xero_type="contact_person")
    survivor = link(pair, "contact-b", "person", 10, xero_type="contact_person")
    with django_capture_on_commit_callbacks(execute=True):
        # v1 carries no survivor id on the delete: the merged record's link is flagged, and the next
        # sync re-finds the survivor by e-mail or name.
        receive(client, pair, pipedrive_v1("person", "deleted", 20, previous={"id": 20}))
        receive(client, pair, pipedrive_v1("person", "merged", 10))
    loser.refresh_from_db()
    survivor.refresh_from_db()
    assert loser.state == "deleted" and survivor.state == "linked" and survivor.pipedrive_id == 10


def test_a_v1_merge_with_the_merged_id_repoints(pair):
    link_row = link(pair, "contact-a", "person", 20, xero_type="contact_person")
    body = pipedrive_v1("person", "merged", 10, current={"id": 10, "merge_what_id": 20})
    outcome = apply_pipedrive_event(pair, parse_pipedrive_body(body))
    link_row.refresh_from_db()
    assert outcome.status == "done" and link_row.pipedrive_id == 10


def test_everything_else_is_ignored(pair):
    org = link(pair, "contact-a", "organization", 42)
    for body in (pipedrive_v2("organization", "change", 42), pipedrive_v2("organization", "create", 43)):
        outcome = apply_pipedrive_event(pair, parse_pipedrive_body(body))
        assert outcome.status == "ignored"
    event = PipedriveEvent(2, "delete", "product", "42", "1", dt.datetime.now(tz=dt.UTC))
    assert apply_pipedrive_event(pair, event).status == "ignored"
    org.refresh_from_db()
    assert (org.pipedrive_id, org.state, org.payload_hash) == (42, "linked", "abc123")


def test_applying_twice_changes_nothing_more(pair):
    link(pair, "contact-a", "organization", 200)
    body = pipedrive_v2("organization", "delete", 200, merged_to_id=100)
    first = apply_pipedrive_event(pair, parse_pipedrive_body(body))
    second = apply_pipedrive_event(pair, parse_pipedrive_body(body))
    assert (first.status, second.status) == ("done", "ignored")
    assert RecordLink.objects.get().pipedrive_id == 100


def test_pipedrive_events_are_applied_before_xero_syncs(pair, fake_sync, monkeypatch):
    order = []
    fake_sync_call = fake_sync.__call__

    def noting_sync(*args, **kwargs):
        order.append("sync")
        return fake_sync_call(*args, **kwargs)

    WebhookEvent.objects.create(
        pair=pair,
        source="xero",
        tenant_id="tenant-1",
        category="CONTACT",
        resource_id="contact-a",
        event_type="UPDATE",
        event_time=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    body = pipedrive_v2("organization", "delete", 200, merged_to_id=100)
    WebhookEvent.objects.create(
        pair=pair,
        source="pipedrive",
        tenant_id="1",
        category="organization",
        resource_id="200",
        event_type="delete",
        event_time=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        payload=body,
    )
    link(pair, "contact-a", "organization", 200)
    original_apply = drain.apply_pipedrive_event

    def noting_apply(*args):
        order.append("pipedrive")
        return original_apply(*args)

    monkeypatch.setattr(drain, "apply_pipedrive_event", noting_apply)
    monkeypatch.setattr(drain, "_sync_records", noting_sync)
    drain.drain_pair(pair.pk)
    assert order == ["pipedrive", "sync"]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"done"}


def test_an_unreadable_stored_payload_fails_its_row_only(pair, fake_sync):
    WebhookEvent.objects.create(
        pair=pair,
        source="pipedrive",
        tenant_id="1",
        category="deal",
        resource_id="1",
        event_type="delete",
        event_time=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        payload={"garbage": True},
    )
    drain.drain_pair(pair.pk)
    row = WebhookEvent.objects.get()
    assert row.status == "failed" and row.reason.startswith("unreadable payload")


# ---------------------------------------------------------------- the local index


def _index(pair):
    from connector.models import PipedriveIndexEntry

    return dict(
        PipedriveIndexEntry.objects.filter(connection=pair.pipedrive_connection).values_list(
            "record_id", "name_key"
        )
    )


def test_pipedrive_events_keep_the_local_index_true(pair):
    from connector.sync import pipedrive_index

    connection = pair.pipedrive_connection
    pipedrive_index.record_entry(connection, "organization", {"id": 42, "name": "Acme Ltd"}, "")
    pipedrive_index.record_entry(connection, "organization", {"id": 43, "name": "Beta Limited"}, "")

    changed = pipedrive_v2("organization", "change", 42, data={"id": 42, "name": "Acme Holdings Ltd"})
    apply_pipedrive_event(pair, parse_pipedrive_body(changed))
    created = pipedrive_v1("organization", "added", 44, current={"id": 44, "name": "Gamma Inc"})
    apply_pipedrive_event(pair, parse_pipedrive_body(created))
    deleted = pipedrive_v2("organization", "delete", 43, previous={"id": 43})
    apply_pipedrive_event(pair, parse_pipedrive_body(deleted))

    from mapping.engine import normalize_org_name

    assert _index(pair) == {
        42: normalize_org_name("Acme Holdings Ltd"),
        44: normalize_org_name("Gamma Inc"),
    }


def test_a_merge_removes_the_merged_record_from_the_index_and_keeps_the_survivor(pair):
    from connector.sync import pipedrive_index

    connection = pair.pipedrive_connection
    for record_id, name in ((100, "Acme Ltd"), (200, "ACME Limited")):
        pipedrive_index.record_entry(connection, "organization", {"id": record_id, "name": name}, "")
    apply_pipedrive_event(
        pair, parse_pipedrive_body(pipedrive_v2("organization", "delete", 200, merged_to_id=100))
    )
    apply_pipedrive_event(pair, parse_pipedrive_body(pipedrive_v1("organization", "merged", 100)))
    assert list(_index(pair)) == [100]


@pytest.mark.django_db(transaction=True)
def test_a_merge_waits_for_a_sync_of_the_same_contact_to_finish(pair):
    """A sync holding the contact's writer lock finishes before its links are re-pointed, so it
    cannot write the merged-away record back over the new link."""
    import threading

    from django.db import connections

    from connector.sync.common import record_lock

    link(pair, "contact-a", "organization", 200)
    link(pair, "contact-a:ann@example.com", "person", 300, xero_type="contact_person")
    holding, release = threading.Event(), threading.Event()

    def sync_in_progress():
        try:
            with record_lock(pair, "contact", "contact-a"):
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    syncing = threading.Thread(target=sync_in_progress)
    syncing.start()
    assert holding.wait(10)
    outcome = []

    def merge():
        try:
            body = pipedrive_v2("person", "delete", 300, merged_to_id=301)
            outcome.append(apply_pipedrive_event(pair, parse_pipedrive_body(body)))
        finally:
            connections.close_all()

    merging = threading.Thread(target=merge)
    merging.start()
    merging.join(0.5)
    assert merging.is_alive() and not outcome, "the merge must wait for the contact's sync"
    release.set()
    syncing.join(10)
    merging.join(10)
    assert outcome[0].status == "done"
    assert RecordLink.objects.get(pipedrive_type="person").pipedrive_id == 301
