"""Contacts → organizations and persons against the sandboxes: links, renames, replays, rules."""

from decimal import Decimal

from connector.models import PipedriveIndexEntry
from connector.sync.contacts import sync_contacts
from mapping.models import CreditLimit, FieldMapping, RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

TWO_PERSONS = [
    {"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@ridge.example", "IncludeInEmails": True},
    {"FirstName": "Bob", "LastName": "Moe", "EmailAddress": "bob@ridge.example", "IncludeInEmails": False},
]


def test_contact_with_two_persons_renamed_and_replayed(sync_pair, sandbox):
    contact_id = sandbox.create_contact(
        "Ridgeway University",
        persons=TWO_PERSONS,
        phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "555 0100", "PhoneAreaCode": "09"}],
        addresses=[{"AddressType": "STREET", "AddressLine1": "1 Queen St", "City": "Auckland"}],
    )
    outcomes = sync_contacts(sync_pair, [contact_id], trigger="webhook")
    outcome = outcomes[contact_id]
    assert outcome.status == "done" and outcome.action == "created", outcome

    [org] = sandbox.organizations()
    assert org["name"] == "Ridgeway University" and org["id"] == outcome.pipedrive_id
    assert "Auckland" in str(org.get("address"))
    persons = sandbox.persons()
    assert sorted(p["name"] for p in persons) == ["Ann Lee", "Bob Moe"]
    assert {p["org_id"] for p in persons} == {org["id"]}
    assert {p["emails"][0]["value"] for p in persons} == {"ann@ridge.example", "bob@ridge.example"}
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="contact_person").count() == 2

    sandbox.update_contact(contact_id, Name="Ridgeway College")
    sandbox.reset_counters()
    renamed = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    assert renamed.action == "updated" and renamed.pipedrive_id == org["id"]
    assert [o["name"] for o in sandbox.organizations()] == ["Ridgeway College"]
    assert len(sandbox.persons()) == 2
    entry = PipedriveIndexEntry.objects.get(entity="organization", record_id=org["id"])
    assert entry.name == "Ridgeway College" and entry.name_key == "ridgeway college"
    counts = sandbox.counts()
    assert counts.pipedrive_writes == 1, counts  # the organization only: persons unchanged

    for _ in range(3):
        sandbox.reset_counters()
        again = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
        assert again.action == "unchanged", again
        counts = sandbox.counts()
        assert counts.pipedrive_writes == 0 and counts.pipedrive_calls == 0, counts
        assert counts.xero_calls == 1, counts
    assert len(sandbox.organizations()) == 1 and len(sandbox.persons()) == 2


def test_editing_a_mapping_row_changes_the_next_sync(sync_pair, sandbox):
    field = sandbox.add_custom_field("organization", "Account number")
    contact_id = sandbox.create_contact("Sigma Ltd", AccountNumber="ACC-7")
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    [org] = sandbox.organizations()
    assert org["custom_fields"][field] is None

    FieldMapping.objects.create(
        pair=sync_pair, target="organization", source_path="AccountNumber", pipedrive_field=field
    )
    sandbox.reset_counters()
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    assert outcome.action == "updated" and sandbox.counts().pipedrive_writes == 1
    assert sandbox.organization(org["id"])["custom_fields"][field] == "ACC-7"


def test_available_credit_from_a_limit_row_or_from_the_organization_field(sync_pair, sandbox):
    available = sandbox.add_custom_field("organization", "Available credit", "double")
    limit_field = sandbox.add_custom_field("organization", "Credit limit", "double")
    FieldMapping.objects.create(
        pair=sync_pair, target="organization", source_path="Connector.AvailableCredit",
        pipedrive_field=available, transform="number",
    )  # fmt: skip
    CreditLimit.objects.create(pair=sync_pair, amount=Decimal("1000"))  # the pair's default limit
    contact_id = sandbox.create_contact("Tau Ltd")
    sandbox.create_invoice(contact_id, amount=800)
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    [org] = sandbox.organizations()
    assert org["custom_fields"][available] == 200

    # Sales keep the limit in Pipedrive instead: the option names their field.
    sync_pair.options = {**sync_pair.options, "credit_limit_field": limit_field}
    sync_pair.save()
    sandbox.pipedrive_update("organization", org["id"], {"custom_fields": {limit_field: 5000}})
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    assert sandbox.organization(org["id"])["custom_fields"][available] == 4200


def test_an_email_changed_in_xero_updates_the_person_instead_of_adding_one(sync_pair, sandbox):
    contact_id = sandbox.create_contact("Phi Ltd", first_name="Ann", last_name="Lee", email="ann@old.example")
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    [person] = sandbox.persons()

    sandbox.update_contact(contact_id, EmailAddress="ann@new.example")
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    assert outcome.action == "updated" and "persons: 1 updated" in outcome.reason, outcome
    [after] = sandbox.persons()
    assert after["id"] == person["id"] and [e["value"] for e in after["emails"]] == ["ann@new.example"]
    links = RecordLink.objects.filter(pair=sync_pair, xero_type="contact_person")
    assert [(link.xero_id, link.pipedrive_id) for link in links] == [
        (f"{contact_id}:ann@new.example", person["id"])
    ]


def test_a_failed_write_of_a_changed_email_keeps_the_old_link_and_adds_no_person(
    sync_pair, sandbox, settings, monkeypatch
):
    from connector.clients.pipedrive import PipedriveClient
    from connector.errors import ServerError

    settings.API_MAX_RETRIES = 0
    contact_id = sandbox.create_contact("Chi Ltd", first_name="Ann", last_name="Lee", email="ann@old.example")
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    [person] = sandbox.persons()
    sandbox.update_contact(contact_id, EmailAddress="ann@new.example")
    original = PipedriveClient.update

    def update(self, entity, record_id, data):
        if entity == "person":
            raise ServerError("Pipedrive answered 503")
        return original(self, entity, record_id, data)

    monkeypatch.setattr(PipedriveClient, "update", update)
    assert sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id].status == "retry"
    links = RecordLink.objects.filter(pair=sync_pair, xero_type="contact_person")
    assert [link.xero_id for link in links] == [f"{contact_id}:ann@old.example"]  # kept until written

    monkeypatch.setattr(PipedriveClient, "update", original)
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    [after] = sandbox.persons()
    assert after["id"] == person["id"] and [e["value"] for e in after["emails"]] == ["ann@new.example"]
    links = RecordLink.objects.filter(pair=sync_pair, xero_type="contact_person")
    assert [(link.xero_id, link.pipedrive_id) for link in links] == [
        (f"{contact_id}:ann@new.example", person["id"])
    ]
