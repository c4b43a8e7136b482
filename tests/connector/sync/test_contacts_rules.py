"""Archived and GDPR-request contacts follow the pair's rule; one contact's failure is that contact's."""

import pytest

from audit.models import SyncRecord
from connector.sync.contacts import sync_contacts
from mapping.models import FieldMapping, RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

PERSONS = [
    {"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@omega.example", "IncludeInEmails": True},
    {"FirstName": "Bob", "LastName": "Moe", "EmailAddress": "bob@omega.example"},
]


def _synced_contact(sync_pair, sandbox, rule):
    if rule:
        sync_pair.options = {**sync_pair.options, "archived_contacts": rule}
        sync_pair.save()
    contact_id = sandbox.create_contact(
        "Omega Ltd", persons=PERSONS, phones=[{"PhoneType": "MOBILE", "PhoneNumber": "021 555 01"}]
    )
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    return contact_id


@pytest.mark.parametrize("status", ["ARCHIVED", "GDPRREQUEST"])
def test_mark_is_the_default_and_names_the_organization(sync_pair, sandbox, status):
    contact_id = _synced_contact(sync_pair, sandbox, None)
    persons_before = sandbox.persons()
    sandbox.update_contact(contact_id, ContactStatus=status)
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    marker = {"ARCHIVED": "[archived in Xero]", "GDPRREQUEST": "[GDPR request in Xero]"}[status]
    assert [o["name"] for o in sandbox.organizations()] == [f"Omega Ltd {marker}"], outcome
    assert sandbox.persons() == persons_before

    sandbox.update_contact(contact_id, ContactStatus="ACTIVE")  # restored in Xero: the mark goes
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    assert [o["name"] for o in sandbox.organizations()] == ["Omega Ltd"]


def test_clear_removes_personal_fields_and_keeps_the_links(sync_pair, sandbox):
    contact_id = _synced_contact(sync_pair, sandbox, "clear")
    person_ids = sorted(p["id"] for p in sandbox.persons())
    sandbox.update_contact(contact_id, ContactStatus="GDPRREQUEST")
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    assert outcome.status == "done" and "persons: 2 updated" in outcome.reason, outcome
    persons = sandbox.persons()
    assert sorted(p["id"] for p in persons) == person_ids
    assert {p["name"] for p in persons} == {"(removed)"}
    assert all(p["emails"] == [] and p["phones"] == [] for p in persons), persons
    assert [o["name"] for o in sandbox.organizations()] == ["Omega Ltd"]
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="contact_person", state="linked").count() == 2
    sandbox.reset_counters()
    sync_contacts(sync_pair, [contact_id], trigger="webhook")
    assert sandbox.counts().pipedrive_writes == 0


def test_leave_syncs_an_archived_contact_like_any_other(sync_pair, sandbox):
    contact_id = _synced_contact(sync_pair, sandbox, "leave")
    sandbox.update_contact(contact_id, ContactStatus="ARCHIVED")
    sandbox.reset_counters()
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    assert outcome.action == "unchanged" and sandbox.counts().pipedrive_writes == 0
    assert [o["name"] for o in sandbox.organizations()] == ["Omega Ltd"]
    assert len(sandbox.persons()) == 2


def test_one_refused_contact_does_not_fail_the_batch(sync_pair, sandbox):
    # AccountNumber is mapped to a field this company does not have: Pipedrive refuses that payload only.
    FieldMapping.objects.create(
        pair=sync_pair, target="organization", source_path="AccountNumber", pipedrive_field="f" * 40
    )
    refused = sandbox.create_contact("Refused Ltd", AccountNumber="ACC-1")
    fine = sandbox.create_contact("Fine Ltd")
    missing = "00000000-0000-0000-0000-00000000abcd"
    outcomes = sync_contacts(sync_pair, [refused, fine, missing, "not-a-guid"], trigger="webhook")
    assert (
        outcomes["not-a-guid"].status == "ignored" and "Not a Xero ContactID" in outcomes["not-a-guid"].reason
    )
    assert outcomes[refused].status == "failed" and "Unknown custom field" in outcomes[refused].reason
    assert outcomes[fine].status == "done" and outcomes[fine].action == "created"
    assert outcomes[missing].status == "ignored" and "Not found in Xero" in outcomes[missing].reason
    assert [o["name"] for o in sandbox.organizations()] == ["Fine Ltd"]
    rows = {r.xero_id: r for r in SyncRecord.objects.all()}
    assert rows[refused].outcome == "failed" and "Unknown custom field" in rows[refused].reason
    assert rows[fine].outcome == "created" and rows[fine].pipedrive_id == outcomes[fine].pipedrive_id
    assert rows[missing].outcome == "skipped"


def test_a_fault_on_one_write_makes_that_contact_retry_and_a_retry_completes_it(sync_pair, sandbox):
    first = sandbox.create_contact("First Ltd")
    second = sandbox.create_contact("Second Ltd")
    sync_contacts(sync_pair, [first], trigger="webhook")  # index filled, first linked
    sandbox.set_faults("pipedrive", error_rate=1.0)
    outcomes = sync_contacts(sync_pair, [first, second], trigger="webhook")
    assert outcomes[first].action == "unchanged"  # nothing to write: the fault never mattered
    assert outcomes[second].status == "retry" and "ServerError" in outcomes[second].reason, outcomes
    sandbox.set_faults("pipedrive", error_rate=0.0)
    assert sync_contacts(sync_pair, [second], trigger="webhook")[second].action == "created"
    assert sorted(o["name"] for o in sandbox.organizations()) == ["First Ltd", "Second Ltd"]
