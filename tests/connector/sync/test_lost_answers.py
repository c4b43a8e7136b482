"""A create whose answer is lost (Pipedrive made the record, the connector saw a timeout; or the worker
died before linking it) must not make a second record at the next sync: the deal and the note are
found by listing the organization's deals / the deal's notes, organizations and persons by a search."""

import pytest

from connector.clients.pipedrive import PipedriveClient
from connector.errors import ServerError
from connector.sync.contacts import sync_contacts
from connector.sync.invoices import sync_invoices
from connector.sync.payments import sync_payments
from mapping.models import FieldMapping, RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


@pytest.fixture(autouse=True)
def no_client_retries(settings):
    settings.API_MAX_RETRIES = 0


@pytest.fixture
def lose_answer(monkeypatch):
    """The next create of ``entity`` (or the next note) happens in Pipedrive, but its answer is lost."""

    def apply(entity: str):
        if entity == "note":
            original = PipedriveClient.add_note

            def add_note(self, content, **links):
                original(self, content, **links)
                monkeypatch.setattr(PipedriveClient, "add_note", original)
                raise ServerError("pipedrive: read timed out")

            monkeypatch.setattr(PipedriveClient, "add_note", add_note)
            return
        original = PipedriveClient.create

        def create(self, kind, data):
            record = original(self, kind, data)
            if kind == entity:
                monkeypatch.setattr(PipedriveClient, "create", original)
                raise ServerError("pipedrive: read timed out")
            return record

        monkeypatch.setattr(PipedriveClient, "create", create)

    return apply


def test_a_deal_created_with_a_lost_answer_is_found_not_duplicated(sync_pair, sandbox, stages, lose_answer):
    contact_id = sandbox.create_contact("Lost Answer Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=250)
    lose_answer("deal")

    assert sync_invoices(sync_pair, [invoice_id])[invoice_id].status == "retry"
    [deal] = sandbox.deals()
    link = RecordLink.objects.get(pair=sync_pair, xero_type="invoice", xero_id=invoice_id)
    assert link.state == RecordLink.State.CREATING and link.pipedrive_id is None

    sandbox.reset_counters()
    outcome = sync_invoices(sync_pair, [invoice_id])[invoice_id]

    assert outcome.status == "done" and outcome.pipedrive_id == deal["id"]
    assert [d["id"] for d in sandbox.deals()] == [deal["id"]]
    link.refresh_from_db()
    assert link.state == RecordLink.State.LINKED and link.pipedrive_id == deal["id"]
    assert sandbox.counts().pipedrive_calls_to("GET /api/v2/deals") == 1
    # Linked now: the next sync is a plain replay, no listing.
    sandbox.reset_counters()
    assert sync_invoices(sync_pair, [invoice_id])[invoice_id].action == "unchanged"
    assert sandbox.counts().pipedrive_calls_to("GET /api/v2/deals") == 0


def test_a_lost_deal_is_matched_by_an_invoice_id_field_when_a_rule_maps_it(
    sync_pair, sandbox, stages, lose_answer
):
    field = sandbox.add_custom_field("deal", "Xero InvoiceID")
    FieldMapping.objects.create(pair=sync_pair, target="deal", source_path="InvoiceID", pipedrive_field=field)
    contact_id = sandbox.create_contact("Field Match Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=90)
    lose_answer("deal")
    sync_invoices(sync_pair, [invoice_id])
    [deal] = sandbox.deals()
    sandbox.pipedrive_update("deal", deal["id"], {"title": "Renamed by sales"})  # the title no longer matches

    outcome = sync_invoices(sync_pair, [invoice_id])[invoice_id]

    assert outcome.pipedrive_id == deal["id"] and [d["id"] for d in sandbox.deals()] == [deal["id"]]


def test_a_deal_that_was_never_created_is_created_after_the_lookup(sync_pair, sandbox, stages, monkeypatch):
    contact_id = sandbox.create_contact("Never Made Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=70)
    original = PipedriveClient.create

    def create(self, kind, data):
        if kind == "deal":
            raise ServerError("pipedrive: connect timeout")
        return original(self, kind, data)

    monkeypatch.setattr(PipedriveClient, "create", create)
    assert sync_invoices(sync_pair, [invoice_id])[invoice_id].status == "retry"
    monkeypatch.setattr(PipedriveClient, "create", original)

    outcome = sync_invoices(sync_pair, [invoice_id])[invoice_id]

    assert outcome.action == "created" and len(sandbox.deals()) == 1


def test_a_note_created_with_a_lost_answer_is_found_not_duplicated(sync_pair, sandbox, stages, lose_answer):
    contact_id = sandbox.create_contact("Lost Note Ltd")
    invoice_id = sandbox.create_invoice(contact_id, amount=100)
    payment_id = sandbox.pay(invoice_id, 40)
    lose_answer("note")

    assert sync_payments(sync_pair, [payment_id])[payment_id].status == "retry"
    [note] = sandbox.notes()

    outcome = sync_payments(sync_pair, [payment_id])[payment_id]

    assert outcome.status == "done" and outcome.pipedrive_id == note["id"]
    assert [n["id"] for n in sandbox.notes()] == [note["id"]]
    assert RecordLink.objects.get(xero_type="payment", xero_id=payment_id).pipedrive_id == note["id"]


def test_an_organization_created_with_a_lost_answer_is_not_created_twice(sync_pair, sandbox, lose_answer):
    sync_contacts(sync_pair, [sandbox.create_contact("Warm Index Ltd")])  # the index is filled and fresh
    contact_id = sandbox.create_contact(
        "Lost Org Ltd", first_name="Ann", last_name="Lee", email="ann@lost.example"
    )
    lose_answer("organization")

    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "retry"
    assert sorted(o["name"] for o in sandbox.organizations()) == ["Lost Org Ltd", "Warm Index Ltd"]

    outcome = sync_contacts(sync_pair, [contact_id])[contact_id]

    assert outcome.status == "done"
    assert sorted(o["name"] for o in sandbox.organizations()) == ["Lost Org Ltd", "Warm Index Ltd"]
    assert len(sandbox.persons()) == 1


def test_a_person_created_with_a_lost_answer_is_not_created_twice(sync_pair, sandbox, lose_answer):
    sync_contacts(sync_pair, [sandbox.create_contact("Warm Index Ltd")])
    contact_id = sandbox.create_contact(
        "Lost Person Ltd", first_name="Bo", last_name="Li", email="bo@lost.example"
    )
    lose_answer("person")

    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "retry"
    assert len(sandbox.persons()) == 1

    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "done"
    assert len(sandbox.persons()) == 1 and len(sandbox.organizations()) == 2


def test_a_lost_organization_among_many_similar_names_is_found_not_created_again(
    sync_pair, sandbox, lose_answer
):
    # More organizations sharing the first word than one page of search results holds, the lost one
    # made last (highest id): a first-word, first-page search misses it.
    sandbox.bulk_organizations([f"Harbour Trading {n:03d}" for n in range(150)])
    sync_contacts(sync_pair, [sandbox.create_contact("Warm Index Ltd")])
    contact_id = sandbox.create_contact("Harbour Trading Lost Ltd")
    lose_answer("organization")
    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "retry"
    [made] = sandbox.organizations(name="Harbour Trading Lost Ltd")

    outcome = sync_contacts(sync_pair, [contact_id])[contact_id]

    assert outcome.status == "done" and outcome.pipedrive_id == made["id"]
    assert len(sandbox.organizations(name="Harbour Trading Lost Ltd")) == 1
    link = RecordLink.objects.get(pair=sync_pair, xero_type="contact", xero_id=contact_id)
    assert link.state == RecordLink.State.LINKED and link.pipedrive_id == made["id"]


def test_a_lost_archived_organization_is_found_by_the_name_it_was_sent_with(sync_pair, sandbox, lose_answer):
    sync_contacts(sync_pair, [sandbox.create_contact("Warm Index Ltd")])
    contact_id = sandbox.create_contact("Old Mill Ltd")
    sandbox.update_contact(contact_id, ContactStatus="ARCHIVED")
    lose_answer("organization")
    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "retry"
    [made] = sandbox.organizations(name="Old Mill Ltd [archived in Xero]")

    assert sync_contacts(sync_pair, [contact_id])[contact_id].pipedrive_id == made["id"]
    assert len(sandbox.organizations()) == 2


def test_a_lost_organization_is_found_by_its_contact_id_field_when_a_rule_maps_it(
    sync_pair, sandbox, lose_answer
):
    field = sandbox.add_custom_field("organization", "Xero ContactID")
    FieldMapping.objects.create(
        pair=sync_pair, target="organization", source_path="ContactID", pipedrive_field=field
    )
    sync_contacts(sync_pair, [sandbox.create_contact("Warm Index Ltd")])
    contact_id = sandbox.create_contact("Field Found Ltd")
    lose_answer("organization")
    assert sync_contacts(sync_pair, [contact_id])[contact_id].status == "retry"
    [made] = sandbox.organizations(name="Field Found Ltd")
    sandbox.pipedrive_update("organization", made["id"], {"name": "Renamed by sales"})

    assert sync_contacts(sync_pair, [contact_id])[contact_id].pipedrive_id == made["id"]
    assert len(sandbox.organizations()) == 2
