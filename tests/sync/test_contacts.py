"""Contacts → organizations and persons against the sandboxes: links, renames, replays, rules."""

from connector.models import PipedriveIndexEntry
from connector.sync.contacts import sync_contacts
from mapping.models import RecordLink
from tests.sync.harness import SYNC_MARKS, SYNC_URLS

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
