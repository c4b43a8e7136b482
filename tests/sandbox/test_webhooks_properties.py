"""Properties of Xero batching that hold for any sequence of writes, pauses and delivery rounds."""

import base64
import hashlib
import hmac
import json
import uuid

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import clock, webhooks
from sandbox.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db

RECEIVER = "https://receiver.example.com/hook"
TENANT = "aef86862-2015-4b6b-88bc-d89032cecc50"

step = st.one_of(
    st.tuples(
        st.just("emit"),
        st.sampled_from(["CONTACT", "INVOICE", "PAYMENT"]),
        st.sampled_from(["CREATE", "UPDATE"]),
        st.sampled_from([0, 1, webhooks.BATCH_WINDOW_SECONDS + 1]),  # sandbox seconds since the last step
    ),
    st.tuples(st.just("deliver")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_every_event_arrives_once_in_order_with_contiguous_sequences(steps, monkeypatch, settings_fixture):
    settings_fixture.SANDBOX_WEBHOOK_AUTODELIVER = False
    monkeypatch.setattr(webhooks, "_connected_client_ids", lambda tenant: {"APP"})
    clock.reset()
    WebhookDelivery.objects.all().delete()
    WebhookSubscription.objects.all().delete()
    subscription = webhooks.register_xero_webhook("APP", RECEIVER, categories="CONTACT,INVOICE,PAYMENT")

    emitted = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as receiver:
        receiver.post(RECEIVER, status=200)
        for action, *args in steps:
            if action == "emit":
                category, event_type, pause = args
                clock.advance(pause)
                emitted.append((category, event_type, str(uuid.uuid4())))
                webhooks.emit_xero_event(TENANT, category, event_type, emitted[-1][2])
            else:
                webhooks.deliver_pending()
        webhooks.deliver_pending()
        bodies = [call.request.body for call in receiver.calls]
        signatures = [call.request.headers["x-xero-signature"] for call in receiver.calls]

    received, expected_first = [], 1
    for body, signature in zip(bodies, signatures, strict=True):
        mac = base64.b64encode(
            hmac.new(subscription.signing_key.encode(), body, hashlib.sha256).digest()
        ).decode()
        assert signature == mac
        batch = json.loads(body)
        assert batch["events"], "no empty batches outside intent to receive"
        assert batch["firstEventSequence"] == expected_first
        assert batch["lastEventSequence"] - batch["firstEventSequence"] + 1 == len(batch["events"])
        expected_first = batch["lastEventSequence"] + 1
        received += [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in batch["events"]]
    assert received == emitted
    assert not WebhookDelivery.objects.exclude(status="sent").exists()


@pytest.fixture
def settings_fixture(settings):
    return settings
