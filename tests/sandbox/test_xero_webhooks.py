"""Writes in the sandbox Xero reach a real HTTP receiver as signed webhooks (no mocks on the wire)."""

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox import clock, webhooks
from sandbox.models import WebhookDelivery
from sandbox.xero import accounting, services

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook endpoint that behaves as Xero asks: 200 for a valid signature, 401 otherwise."""

    def __init__(self):
        self.key = ""
        self.accepted: list[bytes] = []
        self.refused = 0
        self.fail_next = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mac = base64.b64encode(hmac.new(outer.key.encode(), body, hashlib.sha256).digest()).decode()
                if not hmac.compare_digest(mac, self.headers.get("x-xero-signature", "")):
                    outer.refused += 1
                    status = 401
                elif outer.fail_next:
                    outer.fail_next -= 1
                    status = 503
                else:
                    outer.accepted.append(body)
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: a free port
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/xero/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[dict]:
        return [event for body in self.accepted for event in json.loads(body)["events"]]


@pytest.fixture
def receiver():
    receiving = Receiver()
    receiving.thread.start()
    yield receiving
    receiving.server.shutdown()
    receiving.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def organisation(receiver):
    app = services.create_app("Connector", ["http://127.0.0.1/callback/"])
    organisation = services.create_organisation("Webhook Test Ltd")
    services.connect(app, [organisation], "offline_access accounting.contacts.read")
    subscription = webhooks.register_xero_webhook(
        app.client_id, receiver.url, categories="CONTACT,INVOICE,PAYMENT"
    )
    receiver.key = subscription.signing_key
    return organisation


def test_intent_to_receive_against_a_real_receiver(receiver, organisation):
    subscription = webhooks.WebhookSubscription.objects.get()
    report = webhooks.intent_to_receive(subscription)
    assert report["passed"], report
    assert receiver.refused == 1 and len(receiver.accepted) == 1


def test_contact_invoice_and_payment_writes_arrive_signed(
    receiver, organisation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        contact = accounting.create_contact(organisation, {"Name": "Ridgeway University"})
    with django_capture_on_commit_callbacks(execute=True):
        invoice = accounting.create_invoice(
            organisation,
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": str(contact.contact_id)},
                "Status": "AUTHORISED",
                "DueDate": "2026-12-31",
                "LineItems": [
                    {"Description": "Course", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
                ],
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        payment = accounting.create_payment(
            organisation,
            {"Invoice": {"InvoiceID": str(invoice.invoice_id)}, "Account": {"Code": "090"}, "Amount": 20},
        )

    seen = [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in receiver.events()]
    assert ("CONTACT", "CREATE", str(contact.contact_id)) in seen
    assert ("INVOICE", "CREATE", str(invoice.invoice_id)) in seen
    assert ("PAYMENT", "CREATE", str(payment.payment_id)) in seen
    assert ("INVOICE", "UPDATE", str(invoice.invoice_id)) in seen  # the payment changed the invoice
    assert {e["tenantId"] for e in receiver.events()} == {str(organisation.tenant_id)}
    assert receiver.refused == 0
    # Sequence numbers never repeat and only grow.
    firsts = [json.loads(body)["firstEventSequence"] for body in receiver.accepted]
    assert firsts == sorted(set(firsts))
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_receiver_that_is_down_gets_the_event_later(
    receiver, organisation, django_capture_on_commit_callbacks
):
    receiver.fail_next = 2
    with django_capture_on_commit_callbacks(execute=True):
        contact = accounting.create_contact(organisation, {"Name": "Boom FM"})
    assert receiver.accepted == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status) == ("pending", 503)

    webhooks.deliver_pending()  # Xero's immediate retry: still down
    clock.advance(60)
    assert webhooks.deliver_pending() == 1
    assert [e["resourceId"] for e in receiver.events()] == [str(contact.contact_id)]


def test_an_app_not_connected_to_the_organisation_hears_nothing(receiver, django_capture_on_commit_callbacks):
    services.create_app("Other app", ["http://127.0.0.1/callback/"])
    lonely = services.create_organisation("Nobody Connected Ltd")
    webhooks.register_xero_webhook("SOMEONEELSE", receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        accounting.create_contact(lonely, {"Name": "Basket Case"})
    assert WebhookDelivery.objects.count() == 0
    assert receiver.accepted == []
