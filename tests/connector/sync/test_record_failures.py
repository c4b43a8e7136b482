"""One record's problem is its own outcome: transient errors (5xx, timeouts after the client's retries)
come back as "retry" for the drain to try again later, permanent ones as "failed", and neither ends the
batch; whole-run errors (AuthExpired, limits, budget, broken connection) propagate."""

import pytest

from audit.models import SyncRecord
from connector.clients.pipedrive import PipedriveClient
from connector.errors import AuthExpired, ServerError
from connector.sync.contacts import sync_contacts
from connector.sync.invoices import sync_invoices
from connector.sync.payments import sync_payments
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


@pytest.fixture(autouse=True)
def no_client_retries(settings):
    settings.API_MAX_RETRIES = 0  # a ServerError at once, not after back-off sleeps


@pytest.fixture
def patch_client(monkeypatch):
    def apply(entity: str, error: Exception, method: str = "create"):
        original = getattr(PipedriveClient, method)

        def call(self, kind, *args, **kwargs):
            if kind == entity:
                raise error
            return original(self, kind, *args, **kwargs)

        monkeypatch.setattr(PipedriveClient, method, call)

    return apply


def test_pipedrive_server_errors_make_a_contact_retry_not_failed(sync_pair, sandbox):
    contact_id = sandbox.create_contact("Flaky Ltd")
    sandbox.set_faults("pipedrive", error_rate=1.0)

    outcome = sync_contacts(sync_pair, [contact_id])[contact_id]

    assert outcome.status == "retry" and "ServerError" in outcome.reason
    assert SyncRecord.objects.get(xero_type="contact", xero_id=contact_id).outcome == "deferred"
    sandbox.set_faults("pipedrive", error_rate=0)
    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "done"
    assert len(sandbox.organizations()) == 1


def test_a_deal_write_server_error_is_retry(sync_pair, sandbox, stages, patch_client):
    contact_id = sandbox.create_contact("Deal Flaky Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    patch_client("deal", ServerError("Pipedrive answered 503"))

    outcome = sync_invoices(sync_pair, [invoice_id])[invoice_id]

    assert outcome.status == "retry" and "503" in outcome.reason
    assert sandbox.deals() == []


def test_an_invoice_whose_contact_must_be_retried_is_retried_too(sync_pair, sandbox, stages, patch_client):
    contact_id = sandbox.create_contact("Org Flaky Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    patch_client("organization", ServerError("Pipedrive answered 500"))

    outcome = sync_invoices(sync_pair, [invoice_id])[invoice_id]

    assert outcome.status == "retry", outcome


def test_a_note_server_error_is_retry(sync_pair, sandbox, stages, monkeypatch):
    contact_id = sandbox.create_contact("Note Flaky Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    payment_id = sandbox.pay(invoice_id, 40)

    def add_note(self, content, **links):
        raise ServerError("Pipedrive timed out")

    monkeypatch.setattr(PipedriveClient, "add_note", add_note)
    outcome = sync_payments(sync_pair, [payment_id])[payment_id]

    assert outcome.status == "retry" and "timed out" in outcome.reason


def test_a_validation_error_stays_failed(sync_pair, sandbox, stages, patch_client):
    from connector.errors import ValidationFailed

    contact_id = sandbox.create_contact("Refused Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    patch_client("deal", ValidationFailed("title is too long"))

    assert sync_invoices(sync_pair, [invoice_id])[invoice_id].status == "failed"


def test_auth_expired_ends_the_run(sync_pair, sandbox, stages, patch_client):
    contact_id = sandbox.create_contact("Expired Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    patch_client("deal", AuthExpired("Pipedrive refused the token"))

    with pytest.raises(AuthExpired):
        sync_invoices(sync_pair, [invoice_id])


def test_a_malformed_invoice_fails_alone_and_its_batch_goes_on(sync_pair, sandbox, stages):
    from connector.sync.invoices import InvoiceRun

    contact_id = sandbox.create_contact("Good Ltd")
    good = sandbox.create_invoice(contact_id, amount=100)
    run = InvoiceRun(sync_pair, "webhook")
    fetched = run.xero.get_invoices(ids=[good])
    broken = {"InvoiceID": "00000000-0000-0000-0000-00000000000b", "Type": "ACCREC", "Status": "AUTHORISED"}

    outcomes = run.sync_batch([broken, *fetched])

    assert outcomes[broken["InvoiceID"]].status == "failed"
    assert outcomes[good].status == "done" and len(sandbox.deals()) == 1


def test_an_unexpected_error_fails_that_record_only(sync_pair, sandbox, stages, monkeypatch):
    from connector.sync import contacts, invoices

    first = sandbox.create_contact("Boom Ltd")
    second = sandbox.create_contact("Calm Ltd")
    original = contacts.map_organization

    def map_organization(contact, *args, **kwargs):
        if contact.get("Name") == "Boom Ltd":
            raise RuntimeError("unexpected shape")
        return original(contact, *args, **kwargs)

    monkeypatch.setattr(contacts, "map_organization", map_organization)
    outcomes = sync_contacts(sync_pair, [first, second])
    assert outcomes[first].status == "failed" and "RuntimeError: unexpected shape" in outcomes[first].reason
    assert outcomes[second].status == "done"

    one = sandbox.create_invoice(second, amount=10)
    two = sandbox.create_invoice(second, amount=20)
    original_map_deal = invoices.map_deal

    def map_deal(invoice, *args, **kwargs):
        if invoice["InvoiceID"] == one:
            raise RuntimeError("deal mapping broke")
        return original_map_deal(invoice, *args, **kwargs)

    monkeypatch.setattr(invoices, "map_deal", map_deal)
    outcomes = sync_invoices(sync_pair, [one, two])
    assert outcomes[one].status == "failed" and "deal mapping broke" in outcomes[one].reason
    assert outcomes[two].status == "done"
    assert SyncRecord.objects.get(xero_type="invoice", xero_id=one).outcome == "failed"
