"""The webhook outbox: Xero's signed batches, retries with back-off, fault switches, intent to receive."""

import base64
import hashlib
import hmac
import json
import re
import uuid

import pytest
import requests
import responses
from django.contrib import admin as django_admin
from django.core.management import call_command
from django.urls import include, path
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIWebhookRequest
from openapi_core.validation.request.exceptions import InvalidRequestBody
from responses import matchers

from sandbox import clock, faults, webhooks
from sandbox.models import WebhookDelivery, WebhookSubscription
from specs import spec_path

urlpatterns = [
    path("admin/", include("connector.operations.urls")),  # the health page and the home's summary
    path("connect/", include("connector.connections.urls")),  # the home's set-up call-out links there
    path("admin/", django_admin.site.urls),
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

SPEC = spec_path("xero", "webhooks")
RECEIVER = "https://receiver.example.com/webhooks/xero/pair-1/"
TENANT = str(uuid.UUID("c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"))
CLIENT_ID = "APP1CLIENTID"


@pytest.fixture(autouse=True)
def _fresh_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def connected(monkeypatch):
    """Tenant TENANT is connected to app CLIENT_ID (the Xero emulator's answer, stubbed here)."""
    apps = {TENANT: {CLIENT_ID}}
    monkeypatch.setattr(webhooks, "_connected_client_ids", lambda tenant: apps.get(tenant, set()))
    return apps


@pytest.fixture
def hold(settings):
    """Queue without sending, so a test can look at the outbox before delivery."""
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False


@pytest.fixture
def receiver():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def register(url=RECEIVER, categories="CONTACT,INVOICE", key=""):
    return webhooks.register_xero_webhook(CLIENT_ID, url, signing_key=key, categories=categories)


def independent_signature(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _xero_date_time(value) -> bool:
    return (
        isinstance(value, str)
        and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?", value) is not None
    )


# The official webhooks spec, checked by openapi-core with one relaxation: Xero's events (and the
# spec's own example) carry eventDateUtc without a zone suffix, which RFC 3339 date-time refuses.
WEBHOOKS_API = OpenAPI.from_file_path(
    str(SPEC), config=Config(extra_format_validators={"date-time": _xero_date_time})
)


def validate_against_spec(request, webhook="contacts") -> None:
    """Raise unless the request (as sent on the wire) is a valid call of the spec's webhook."""
    WEBHOOKS_API.validate_webhook_request(RequestsOpenAPIWebhookRequest(request, webhook))


# ---------------------------------------------------------------- signing and shape


def test_a_write_is_delivered_signed_with_the_webhook_key(
    connected, receiver, django_capture_on_commit_callbacks
):
    subscription = register()
    receiver.post(RECEIVER, status=200)
    contact_id = str(uuid.uuid4())

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", contact_id)

    assert len(receiver.calls) == 1
    request = receiver.calls[0].request
    assert request.headers["x-xero-signature"] == independent_signature(
        request.body, subscription.signing_key
    )
    assert request.headers["x-xero-signature"] != independent_signature(request.body, "another key")
    payload = json.loads(request.body)
    assert payload["events"][0]["resourceId"] == contact_id
    assert payload["events"][0]["resourceUrl"] == f"https://api.xero.com/api.xro/2.0/Contacts/{contact_id}"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("sent", 1, 200)
    assert delivery.sent_at is not None


def test_batches_have_xeros_shape(connected, receiver, django_capture_on_commit_callbacks):
    register(categories="CONTACT,INVOICE")
    receiver.post(RECEIVER, status=200)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", ids[0])
        webhooks.emit_xero_event(TENANT, "INVOICE", "CREATE", ids[1])
        webhooks.emit_xero_event(TENANT, "INVOICE", "UPDATE", ids[2])

    request = receiver.calls[0].request
    for webhook in ("contacts", "invoices"):
        validate_against_spec(request, webhook)
    payload = json.loads(request.body)
    assert set(payload) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
    assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (1, 3)
    assert [e["resourceId"] for e in payload["events"]] == ids
    assert [e["eventCategory"] for e in payload["events"]] == ["CONTACT", "INVOICE", "INVOICE"]
    assert [e["eventType"] for e in payload["events"]] == ["CREATE", "CREATE", "UPDATE"]
    for event in payload["events"]:
        assert event["tenantId"] == TENANT and event["tenantType"] == "ORGANISATION"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", event["eventDateUtc"])


def test_the_spec_check_rejects_a_malformed_batch():
    # The check above can fail: a batch with a bad id, a zoned date or no entropy is refused.
    good = {
        "events": [
            {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{TENANT}",
                "resourceId": TENANT,
                "eventDateUtc": "2024-06-21T01:15:39.902",
                "eventType": "UPDATE",
                "eventCategory": "CONTACT",
                "tenantId": TENANT,
                "tenantType": "ORGANISATION",
            }
        ],
        "firstEventSequence": 1,
        "lastEventSequence": 1,
        "entropy": "S0m3r4Nd0mt3xt",
    }

    def sent(payload):
        return requests.Request("POST", RECEIVER, json=payload).prepare()

    validate_against_spec(sent(good))
    event = good["events"][0]
    for broken in (
        {**good, "events": [{**event, "resourceId": "not-a-uuid"}]},
        {**good, "events": [{**event, "eventDateUtc": "yesterday"}]},
        {**good, "events": [{**event, "eventType": "DELETE"}]},
        {k: v for k, v in good.items() if k != "entropy"},
        {**good, "firstEventSequence": 0},
    ):
        with pytest.raises(InvalidRequestBody):
            validate_against_spec(sent(broken))


def test_event_date_is_utc_without_zone_suffix(connected, hold):
    register()
    moment = clock.timezone.datetime(2024, 6, 21, 11, 15, 39, 902000, tzinfo=clock.dt.timezone.utc)
    webhooks.emit_xero_event(TENANT, "CONTACT", "UPDATE", str(uuid.uuid4()), event_date=moment)
    event = json.loads(WebhookDelivery.objects.get().body)["events"][0]
    assert event["eventDateUtc"] == "2024-06-21T11:15:39.902"


def test_events_of_one_transaction_go_in_one_signed_delivery(
    connected, receiver, django_capture_on_commit_callbacks
):
    subscription = register()
    receiver.post(RECEIVER, status=200)

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            webhooks.emit_xero_event(TENANT, "INVOICE", "UPDATE", str(uuid.uuid4()))
        assert len(receiver.calls) == 0  # nothing leaves before the commit

    assert len(receiver.calls) == 1
    body = receiver.calls[0].request.body
    assert len(json.loads(body)["events"]) == 4
    # The batch was re-signed as it grew: the signature covers all four events.
    assert receiver.calls[0].request.headers["x-xero-signature"] == independent_signature(
        body, subscription.signing_key
    )

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit_xero_event(TENANT, "INVOICE", "UPDATE", str(uuid.uuid4()))
    later = json.loads(receiver.calls[1].request.body)
    assert (later["firstEventSequence"], later["lastEventSequence"]) == (5, 5)
    assert later["entropy"] != json.loads(body)["entropy"]


def test_a_new_batch_starts_after_the_window(connected, hold):
    register()
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    clock.advance(webhooks.BATCH_WINDOW_SECONDS + 1)
    webhooks.emit_xero_event(TENANT, "CONTACT", "UPDATE", str(uuid.uuid4()))
    assert list(WebhookDelivery.objects.order_by("pk").values_list("event_count", flat=True)) == [1, 1]


def test_events_go_only_to_subscribed_categories_and_connected_apps(connected, hold):
    contacts_only = register(url="https://a.example.com/hook", categories="CONTACT")
    with_payments = register(url="https://b.example.com/hook", categories="CONTACT,INVOICE,PAYMENT")
    webhooks.register_xero_webhook("OTHERAPP", "https://c.example.com/hook")
    inactive = register(url="https://d.example.com/hook")
    WebhookSubscription.objects.filter(pk=inactive.pk).update(active=False)

    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    webhooks.emit_xero_event(TENANT, "INVOICE", "CREATE", str(uuid.uuid4()))
    webhooks.emit_xero_event(TENANT, "PAYMENT", "CREATE", str(uuid.uuid4()))
    webhooks.emit_xero_event(str(uuid.uuid4()), "CONTACT", "CREATE", str(uuid.uuid4()))  # no app connected

    categories = {
        d.url: [e["eventCategory"] for e in json.loads(d.body)["events"]]
        for d in WebhookDelivery.objects.all()
    }
    assert categories == {
        contacts_only.url: ["CONTACT"],
        with_payments.url: ["CONTACT", "INVOICE", "PAYMENT"],
    }
    payment = json.loads(WebhookDelivery.objects.get(url=with_payments.url).body)["events"][2]
    assert "/api.xro/2.0/Payments/" in payment["resourceUrl"]


def test_only_create_and_update_of_known_categories(connected):
    with pytest.raises(ValueError, match="CREATE or UPDATE"):
        webhooks.emit_xero_event(TENANT, "CONTACT", "DELETE", str(uuid.uuid4()))
    with pytest.raises(ValueError, match="no webhooks"):
        webhooks.emit_xero_event(TENANT, "ITEM", "CREATE", str(uuid.uuid4()))
    with pytest.raises(ValueError, match="unknown Xero webhook categories"):
        register(categories="CONTACT,BANKTRANSACTION")


# ---------------------------------------------------------------- retries


def test_a_failing_receiver_is_retried_with_back_off_until_it_answers(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=500)
    receiver.post(RECEIVER, status=503)
    receiver.post(RECEIVER, status=500)
    receiver.post(RECEIVER, status=200)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))

    assert webhooks.deliver_pending() == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert "HTTP 500" in delivery.last_error

    # Xero retries at once, then backs off.
    assert webhooks.deliver_pending() == 0
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status) == (2, 503)
    first_gap = (delivery.next_attempt_at - clock.now()).total_seconds()
    assert 55 < first_gap <= 60

    assert webhooks.deliver_pending() == 0  # not due yet: no request
    assert len(receiver.calls) == 2

    clock.advance(60)
    assert webhooks.deliver_pending() == 0
    delivery.refresh_from_db()
    second_gap = (delivery.next_attempt_at - clock.now()).total_seconds()
    assert second_gap > first_gap  # the gap grows

    clock.advance(second_gap)
    assert webhooks.deliver_pending() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.last_error) == (
        "sent",
        4,
        200,
        "",
    )
    # Every try carried the same signed bytes.
    assert len({call.request.body for call in receiver.calls}) == 1


def test_back_off_follows_the_time_scale(connected, hold, receiver, settings):
    settings.SANDBOX_TIME_SCALE = 60
    register()
    receiver.post(RECEIVER, status=500)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    webhooks.deliver_pending()
    webhooks.deliver_pending()
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 2
    assert (delivery.next_attempt_at - clock.now()).total_seconds() <= 1  # 60 sandbox seconds


def test_xero_gives_up_after_a_day_and_disables_the_webhook(connected, hold, receiver):
    subscription = register()
    receiver.post(RECEIVER, status=500)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))

    tries = 0
    while WebhookDelivery.objects.get().status == "pending" and tries < 500:
        webhooks.deliver_pending()
        clock.advance(900)
        tries += 1

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert 90 < delivery.attempts < 110  # every 15 minutes for 24 hours, after the first back-offs
    subscription.refresh_from_db()
    assert not subscription.active
    # A disabled webhook gets no new events.
    webhooks.emit_xero_event(TENANT, "CONTACT", "UPDATE", str(uuid.uuid4()))
    assert WebhookDelivery.objects.count() == 1


def test_an_unreachable_receiver_is_recorded_and_retried(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, body=requests.exceptions.ConnectionError("connection refused"))
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    webhooks.deliver_pending()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status) == ("pending", None)
    assert "connection refused" in delivery.last_error


def test_pipedrive_deliveries_are_sent_as_given_and_tried_four_times(hold, receiver):
    url = "https://connector.example.com/webhooks/pipedrive/pair-1/"
    receiver.post(url, status=500, match=[matchers.header_matcher({"Authorization": "Basic dTpw"})])
    webhooks.queue_delivery(
        "pipedrive", url, b'{"meta":{"action":"change"}}', {"Authorization": "Basic dTpw"}
    )

    webhooks.deliver_pending()
    for delay in (3, 30, 150):
        clock.advance(delay)
        webhooks.deliver_pending()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert [call.request.body for call in receiver.calls] == [b'{"meta":{"action":"change"}}'] * 4


def test_queue_delivery_sends_after_the_commit(receiver, django_capture_on_commit_callbacks):
    url = "https://connector.example.com/webhooks/pipedrive/pair-1/"
    receiver.post(url, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.queue_delivery("pipedrive", url, b"{}", {"Content-Type": "application/json"})
    assert len(receiver.calls) == 1
    assert WebhookDelivery.objects.get().status == "sent"


def test_the_deliver_command_sends_what_is_due(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    call_command("sandbox_deliver")
    assert WebhookDelivery.objects.get().status == "sent"


def test_the_deliver_command_loops_until_interrupted(connected, hold, receiver, monkeypatch):
    from sandbox.management.commands import sandbox_deliver

    register()
    receiver.post(RECEIVER, status=200)
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 1:  # an event arrives between two polls
            webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(sandbox_deliver.time, "sleep", sleep)
    call_command("sandbox_deliver", "--loop", "--interval", "0.25")
    assert rounds == [0.25, 0.25]
    assert WebhookDelivery.objects.get().status == "sent"


def test_an_event_added_while_the_sender_reads_the_outbox_is_sent_not_lost(
    connected, hold, receiver, monkeypatch
):
    register()
    receiver.post(RECEIVER, status=200)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", first)
    read_fault_switch = faults.get

    def write_lands_after_the_read(service):
        # Runs after the sender has read the due deliveries and before it claims them: another
        # write joins the open delivery in that gap.
        if service == "xero" and WebhookDelivery.objects.get().event_count == 1:
            webhooks.emit_xero_event(TENANT, "CONTACT", "UPDATE", second)
        return read_fault_switch(service)

    monkeypatch.setattr(webhooks.faults, "get", write_lands_after_the_read)
    assert webhooks.deliver_pending() == 1
    sent = [
        event["resourceId"] for call in receiver.calls for event in json.loads(call.request.body)["events"]
    ]
    assert sent == [first, second]
    assert WebhookDelivery.objects.get().event_count == 2


def test_a_delivery_left_sending_by_a_dead_sender_is_sent_once_its_lease_expires(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    lease_end = clock.now() + clock.dt.timedelta(seconds=45)
    WebhookDelivery.objects.update(
        status="sending", next_attempt_at=lease_end
    )  # claimed, then the sender died

    assert webhooks.deliver_pending() == 0  # still leased: nobody else sends it
    assert len(receiver.calls) == 0
    clock.advance(46)
    assert webhooks.deliver_pending() == 1
    assert WebhookDelivery.objects.get().status == "sent"


# ---------------------------------------------------------------- fault switches


def test_drop_switch_marks_deliveries_dropped_and_never_sends_them(connected, hold, receiver):
    register()
    faults.set_faults("xero", webhook_drop_rate=1)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    assert webhooks.deliver_pending() == 0
    assert WebhookDelivery.objects.get().status == "dropped"
    clock.advance(86400)
    webhooks.deliver_pending()
    assert len(receiver.calls) == 0


def test_duplicate_switch_sends_the_same_delivery_twice(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    faults.set_faults("xero", webhook_duplicate_rate=1)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    assert webhooks.deliver_pending() == 1
    assert len(receiver.calls) == 2
    assert receiver.calls[0].request.body == receiver.calls[1].request.body
    assert WebhookDelivery.objects.get().status == "sent"


def test_reorder_switch_sends_pending_deliveries_newest_first(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    ids = []
    for _ in range(3):
        ids.append(str(uuid.uuid4()))
        webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", ids[-1])
        clock.advance(webhooks.BATCH_WINDOW_SECONDS + 1)  # three separate batches

    faults.set_faults("xero", webhook_reorder=True)
    assert webhooks.deliver_pending() == 3
    sent = [json.loads(call.request.body)["events"][0]["resourceId"] for call in receiver.calls]
    assert sent == list(reversed(ids))


def test_without_reorder_deliveries_go_oldest_first(connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    ids = []
    for _ in range(3):
        ids.append(str(uuid.uuid4()))
        webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", ids[-1])
        clock.advance(webhooks.BATCH_WINDOW_SECONDS + 1)
    faults.set_faults("pipedrive", webhook_reorder=True)  # another service's switch changes nothing here
    webhooks.deliver_pending()
    assert [json.loads(c.request.body)["events"][0]["resourceId"] for c in receiver.calls] == ids


# ---------------------------------------------------------------- intent to receive


def correct_receiver(key):
    """A receiver that does what Xero asks: 200 when the signature verifies, 401 otherwise."""

    def answer(request):
        expected = independent_signature(request.body, key)
        return (
            (200, {}, "")
            if hmac.compare_digest(expected, request.headers["x-xero-signature"])
            else (401, {}, "")
        )

    return answer


def test_intent_to_receive_passes_for_a_receiver_that_checks_signatures(receiver):
    subscription = register()
    receiver.add_callback(responses.POST, RECEIVER, callback=correct_receiver(subscription.signing_key))

    report = webhooks.intent_to_receive(subscription)

    assert report["passed"] is True
    assert [(c["expected"], c["status"], c["passed"]) for c in report["checks"]] == [
        (200, 200, True),
        (401, 401, True),
    ]
    payload = json.loads(receiver.calls[0].request.body)
    assert payload["events"] == [] and payload["firstEventSequence"] == payload["lastEventSequence"] == 0
    subscription.refresh_from_db()
    assert subscription.intent_verified_at is not None


def test_passing_intent_to_receive_re_enables_a_disabled_webhook(receiver):
    subscription = register()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(active=False)
    receiver.add_callback(responses.POST, RECEIVER, callback=correct_receiver(subscription.signing_key))
    assert webhooks.intent_to_receive(subscription)["passed"]
    subscription.refresh_from_db()
    assert subscription.active


def test_intent_to_receive_fails_for_a_receiver_that_accepts_everything(receiver):
    subscription = register()
    receiver.post(RECEIVER, status=200)

    report = webhooks.intent_to_receive(subscription)

    assert report["passed"] is False
    assert [(c["expected"], c["status"], c["passed"]) for c in report["checks"]] == [
        (200, 200, True),
        (401, 200, False),
    ]
    subscription.refresh_from_db()
    assert subscription.intent_verified_at is None


def test_intent_to_receive_fails_for_a_receiver_with_the_wrong_key(receiver):
    subscription = register()
    receiver.add_callback(responses.POST, RECEIVER, callback=correct_receiver("not the webhook key"))
    report = webhooks.intent_to_receive(subscription)
    assert report["passed"] is False
    assert report["checks"][0]["status"] == 401


def test_intent_to_receive_endpoint(client, receiver):
    subscription = register()
    receiver.add_callback(responses.POST, RECEIVER, callback=correct_receiver(subscription.signing_key))
    response = client.post(f"/sandbox/_webhooks/{subscription.pk}/intent-to-receive")
    assert response.status_code == 200
    assert response.json()["passed"] is True
    assert client.post("/sandbox/_webhooks/999999/intent-to-receive").status_code == 404


# ---------------------------------------------------------------- control endpoints


def test_registering_a_xero_webhook_over_http(client):
    response = client.post(
        "/sandbox/_webhooks/",
        {"client_id": CLIENT_ID, "url": RECEIVER, "categories": "CONTACT,INVOICE,PAYMENT"},
        content_type="application/json",
    )
    assert response.status_code == 201
    created = response.json()
    assert created["has_signing_key"] is True and "signing_key" not in created  # never answered
    stored = WebhookSubscription.objects.get(pk=created["id"]).signing_key
    assert len(stored) == 88 and base64.b64decode(stored)
    assert created["categories"] == ["CONTACT", "INVOICE", "PAYMENT"]
    assert WebhookSubscription.objects.get(pk=created["id"]).app_ref == CLIENT_ID

    listed = client.get("/sandbox/_webhooks/").json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]

    given_key = client.post(
        "/sandbox/_webhooks/",
        {"client_id": "X", "url": RECEIVER, "signing_key": "k"},
        content_type="application/json",
    )
    assert given_key.json()["has_signing_key"] is True and '"k"' not in given_key.content.decode()
    assert WebhookSubscription.objects.get(pk=given_key.json()["id"]).signing_key == "k"
    assert (
        client.post("/sandbox/_webhooks/", {"url": RECEIVER}, content_type="application/json").status_code
        == 400
    )
    bad = client.post(
        "/sandbox/_webhooks/",
        {"client_id": "X", "url": RECEIVER, "categories": "ITEM"},
        content_type="application/json",
    )
    assert bad.status_code == 400


def test_deliveries_endpoint_and_deliver_now(client, connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    assert [d["status"] for d in client.get("/sandbox/_webhooks/deliveries").json()["deliveries"]] == [
        "pending"
    ]
    assert client.post("/sandbox/_webhooks/deliver", QUERY_STRING="limit=x").status_code == 400
    assert client.post("/sandbox/_webhooks/deliver").json() == {"sent": 1}
    listed = client.get("/sandbox/_webhooks/deliveries", {"status": "sent"}).json()["deliveries"]
    assert len(listed) == 1 and listed[0]["event_count"] == 1


# ---------------------------------------------------------------- pages


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_overview_page_shows_services_counters_faults_and_deliveries(staff_client, connected, hold):
    from sandbox import counters

    register()
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    counters.count_call("xero", TENANT, "GET /Contacts", 200)
    faults.set_faults("pipedrive", error_rate=0.25)

    response = staff_client.get("/sandbox/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="service-xero"' in html and 'id="service-pipedrive"' in html
    assert "GET /Contacts" in html
    assert "error_rate: 0.25" in html
    assert RECEIVER in html and "pending" in html


def test_overview_page_needs_a_staff_login(client):
    response = client.get("/sandbox/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_pages_of_the_core_models_render(staff_client, connected, hold):
    from sandbox import counters

    subscription = register()
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    counters.count_call("xero", TENANT, "GET /Contacts", 200)
    with counters.in_flight("xero", TENANT, limit=5):
        pass
    faults.set_faults("xero", latency_ms=5)
    delivery = WebhookDelivery.objects.get()

    for name in (
        "faultswitch",
        "callcount",
        "concurrencygauge",
        "ratewindow",
        "webhooksubscription",
        "webhookdelivery",
    ):
        assert staff_client.get(f"/admin/sandbox/{name}/").status_code == 200, name
    page = staff_client.get(f"/admin/sandbox/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert "x-xero-signature" in page.content.decode() and "firstEventSequence" in page.content.decode()
    assert (
        staff_client.get(f"/admin/sandbox/webhooksubscription/{subscription.pk}/change/").status_code == 200
    )
    assert staff_client.get("/admin/sandbox/webhookdelivery/add/").status_code == 403


def test_admin_action_runs_intent_to_receive(staff_client, receiver):
    subscription = register()
    receiver.add_callback(responses.POST, RECEIVER, callback=correct_receiver(subscription.signing_key))
    response = staff_client.post(
        "/admin/sandbox/webhooksubscription/",
        {"action": "send_intent_to_receive", "_selected_action": [subscription.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "passed" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.intent_verified_at is not None


def test_admin_action_sends_due_deliveries(staff_client, connected, hold, receiver):
    register()
    receiver.post(RECEIVER, status=200)
    webhooks.emit_xero_event(TENANT, "CONTACT", "CREATE", str(uuid.uuid4()))
    delivery = WebhookDelivery.objects.get()
    response = staff_client.post(
        "/admin/sandbox/webhookdelivery/",
        {"action": "send_due_now", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Sent 1 due deliveries." in response.content.decode()
    assert WebhookDelivery.objects.get().status == "sent"


def test_overview_links_to_every_registered_record_admin_of_the_emulators(staff_client):
    from django.apps import apps

    html = staff_client.get("/sandbox/").content.decode()
    for label in ("sandbox_xero", "sandbox_pipedrive"):
        for model in apps.get_app_config(label).get_models():
            if django_admin.site.is_registered(model):
                assert f"/admin/{label}/{model._meta.model_name}/" in html


def test_overview_survives_a_record_admin_without_urls(staff_client, monkeypatch):
    """A record admin whose list URL cannot be reversed is skipped, not a 500."""
    from django.apps import apps
    from django.urls import NoReverseMatch

    import sandbox.pages

    model = next(
        m for m in apps.get_app_config("sandbox_pipedrive").get_models() if django_admin.site.is_registered(m)
    )
    missing = f"admin:sandbox_pipedrive_{model._meta.model_name}_changelist"
    real_reverse = sandbox.pages.reverse

    def reverse(name, *args, **kwargs):
        if name == missing:
            raise NoReverseMatch(name)
        return real_reverse(name, *args, **kwargs)

    monkeypatch.setattr(sandbox.pages, "reverse", reverse)
    response = staff_client.get("/sandbox/")
    assert response.status_code == 200
    page = response.content.decode()
    records = page[page.index('class="sandbox-records"') :]  # the overview's own lists, not the nav sidebar
    assert f"/admin/sandbox_pipedrive/{model._meta.model_name}/" not in records
    assert "/admin/sandbox_pipedrive/" in records  # the other record lists are still linked


def test_admin_adds_a_xero_webhook_with_a_generated_key(staff_client):
    response = staff_client.post(
        "/admin/sandbox/webhooksubscription/add/",
        {"service": "xero", "app_ref": CLIENT_ID, "url": RECEIVER, "categories": "CONTACT", "active": "on"},
    )
    assert response.status_code == 302
    assert len(WebhookSubscription.objects.get().signing_key) == 88
