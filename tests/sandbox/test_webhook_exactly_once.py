"""The Xero webhook sender delivers every event exactly once per subscription.

An event is appended only to a delivery nobody has claimed, and what is sent is the body stored
when the delivery was claimed: under bursts of writes, multi-record PUTs and a second sender
running beside the inline one, no event is lost and none is sent twice (before any dedupe).
"""

import json
import threading
import time
import uuid
from collections import Counter

import pytest
import responses
from django.db import connection

from sandbox import faults, webhooks
from sandbox.models import WebhookDelivery
from tests.sandbox.conftest import SANDBOX_URLS, XeroSession, authorize, token_request

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.urls(__name__)]

RECEIVERS = ["https://receiver.example.com/xero/a/", "https://other.example.com/xero/b/"]


def _received_events(calls, url) -> list[dict]:
    events = []
    for call in calls:
        if call.request.url == url:
            events += json.loads(call.request.body)["events"]
    return events


@pytest.mark.django_db
def test_an_event_appended_between_listing_and_claiming_is_in_the_body_sent(monkeypatch, settings):
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False
    tenant, client_id = str(uuid.uuid4()), "APP-RACE"
    monkeypatch.setattr(webhooks, "_connected_client_ids", lambda t: {client_id} if t == tenant else set())
    webhooks.register_xero_webhook(client_id, RECEIVERS[0], categories="CONTACT")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    webhooks.emit_xero_event(tenant, "CONTACT", "CREATE", first)

    # The sender reads its fault switches after listing the due rows and before claiming them:
    # a write lands exactly then.
    real_get, landed = faults.get, []

    def get_then_write(service):
        if not landed:
            landed.append(True)
            webhooks.emit_xero_event(tenant, "CONTACT", "UPDATE", second)
        return real_get(service)

    monkeypatch.setattr(faults, "get", get_then_write)
    with responses.RequestsMock() as receiver:
        receiver.post(RECEIVERS[0], status=200)
        webhooks.deliver_pending()
        webhooks.deliver_pending()  # anything left for a second round goes now
        received = _received_events(receiver.calls, RECEIVERS[0])
        sent_bodies = [call.request.body for call in receiver.calls]

    assert landed
    assert sorted(e["resourceId"] for e in received) == sorted([first, second])
    stored = list(WebhookDelivery.objects.filter(status="sent").order_by("pk").values_list("body", flat=True))
    assert [body.encode() for body in stored] == sent_bodies  # what was sent is what is stored


def _xero_session(client) -> tuple[XeroSession, list]:
    from sandbox.xero import services

    app = services.create_app("Burst tester", ["https://app.example/connect/xero/callback/"])
    app.minute_limit = app.day_limit = app.app_minute_limit = 100_000
    app.concurrent_limit = 50
    app.save()
    organisations = [services.create_organisation("Burst Ltd")]
    query = authorize(client, app, organisations)
    tokens = token_request(
        client,
        app,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri="https://app.example/connect/xero/callback/",
    ).json()
    subscriptions = [
        webhooks.register_xero_webhook(app.client_id, url, categories="CONTACT,INVOICE") for url in RECEIVERS
    ]
    return XeroSession(client, app, tokens, str(organisations[0].tenant_id)), subscriptions


class _SecondSender(threading.Thread):
    """``sandbox_deliver --loop`` beside the inline task: sends whatever is due, over and over."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def run(self):
        try:
            while not self.stop.is_set():
                webhooks.deliver_pending(limit=20)
                time.sleep(0.005)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_thousand_writes_in_bursts_and_multi_record_puts_deliver_each_event_exactly_once(client):
    xero, subscriptions = _xero_session(client)
    expected: Counter = Counter()
    sender = _SecondSender()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as receiver:
        for url in RECEIVERS:
            receiver.post(url, status=200)
        sender.start()
        try:
            contact_ids = []
            # Multi-record PUTs: 8 x 50 contacts, each one CONTACT CREATE.
            for batch in range(8):
                body = {"Contacts": [{"Name": f"Burst {batch}-{i}"} for i in range(50)]}
                answer = xero.send("PUT", "/Contacts", body)
                assert answer.status_code == 200, answer.content
                for contact in answer.json()["Contacts"]:
                    contact_ids.append(contact["ContactID"])
                    expected["CONTACT", "CREATE", contact["ContactID"]] += 1
            # Bursts of single writes: 300 contact updates ...
            for n, contact_id in enumerate(contact_ids[:300]):
                answer = xero.send("POST", f"/Contacts/{contact_id}", {"EmailAddress": f"c{n}@burst.example"})
                assert answer.status_code == 200, answer.content
                expected["CONTACT", "UPDATE", contact_id] += 1
            # ... and 6 multi-record PUTs of 50 draft invoices (one INVOICE CREATE each).
            for batch in range(6):
                body = {
                    "Invoices": [
                        {
                            "Type": "ACCREC",
                            "Contact": {"ContactID": contact_ids[batch * 50 + i]},
                            "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 10}],
                        }
                        for i in range(50)
                    ]
                }
                answer = xero.send("PUT", "/Invoices", body)
                assert answer.status_code == 200, answer.content
                for invoice in answer.json()["Invoices"]:
                    expected["INVOICE", "CREATE", invoice["InvoiceID"]] += 1
        finally:
            sender.stop.set()
            sender.join(timeout=60)
        assert not sender.errors, sender.errors
        webhooks.deliver_pending(limit=10_000)  # whatever the last commits queued
        calls = list(receiver.calls)

    assert sum(expected.values()) == 1000
    for subscription in subscriptions:
        received = _received_events(calls, subscription.url)
        got = Counter((e["eventCategory"], e["eventType"], e["resourceId"]) for e in received)
        missing, doubled = expected - got, got - expected
        assert not missing and not doubled, (len(missing), len(doubled))
        # Every stored delivery was sent with exactly the body the receiver got.
        stored = WebhookDelivery.objects.filter(subscription=subscription)
        assert set(stored.values_list("status", flat=True)) == {"sent"}
        sent_bodies = Counter(c.request.body for c in calls if c.request.url == subscription.url)
        assert sent_bodies == Counter(body.encode() for body in stored.values_list("body", flat=True))
