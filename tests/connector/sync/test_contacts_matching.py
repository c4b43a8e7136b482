"""Matching Xero contacts to what Pipedrive already holds, through the local index (no search calls)."""

from audit.models import SyncRecord
from connector.models import PipedriveIndexEntry
from connector.sync import pipedrive_index
from connector.sync.contacts import sync_contacts
from mapping.models import FieldMapping, RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_normalized_name_and_email_match_existing_records_without_search(sync_pair, sandbox):
    org_id = sandbox.pipedrive_create("organization", {"name": "ACME Limited"})
    person_id = sandbox.pipedrive_create(
        "person", {"name": "Ann Lee", "emails": [{"value": "Ann@Acme.example", "primary": True}]}
    )
    contact_id = sandbox.create_contact(
        "Acme Ltd", first_name="Ann", last_name="Lee", email="ann@acme.example"
    )
    sandbox.reset_counters()

    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]

    counts = sandbox.counts()
    assert outcome.status == "done" and outcome.pipedrive_id == org_id, outcome
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0, counts
    assert counts.pipedrive_calls_to("POST /api/v2/persons") == 0, counts
    assert counts.pipedrive_searches == 0, counts
    assert [o["id"] for o in sandbox.organizations()] == [org_id]
    [person] = sandbox.persons()
    assert person["id"] == person_id and person["org_id"] == org_id
    link = RecordLink.objects.get(pair=sync_pair, xero_type="contact_person")
    assert link.xero_id == f"{contact_id}:ann@acme.example" and link.pipedrive_id == person_id
    reason = SyncRecord.objects.get(xero_id=contact_id).reason
    assert "normalized name 'acme ltd'" in reason, reason


def test_contact_id_field_matches_an_organization_renamed_in_pipedrive(sync_pair, sandbox):
    field = sandbox.add_custom_field("organization", "Xero ContactID")
    contact_id = sandbox.create_contact("Original Name Ltd")
    org_id = sandbox.pipedrive_create(
        "organization", {"name": "Renamed By Sales", "custom_fields": {field: contact_id}}
    )
    sandbox.pipedrive_create("organization", {"name": "Original Name Limited"})  # a look-alike
    sandbox.reset_counters()

    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]

    counts = sandbox.counts()
    assert outcome.pipedrive_id == org_id and "ContactID field" in outcome.reason, outcome
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0 and counts.pipedrive_searches == 0
    assert counts.pipedrive_calls_to("GET /api/v2/organizationFields") == 1, counts  # found by name
    assert pipedrive_index.ensure_index(sync_pair.pipedrive_connection, None).contact_id_field == field


def test_a_mapping_rule_names_the_contact_id_field_and_new_organizations_carry_it(sync_pair, sandbox):
    field = sandbox.add_custom_field("organization", "Accounting id")
    FieldMapping.objects.create(
        pair=sync_pair, target="organization", source_path="ContactID", pipedrive_field=field
    )
    first = sandbox.create_contact("Gamma Traders")
    sync_contacts(sync_pair, [first], trigger="webhook")
    [org] = sandbox.organizations()
    assert org["custom_fields"][field] == first

    # Pipedrive loses the link (as after a restore): the field still finds the organization.
    RecordLink.objects.filter(pair=sync_pair).delete()
    sandbox.pipedrive_update("organization", org["id"], {"name": "Gamma (key account)"})
    sandbox.reset_counters()
    again = sync_contacts(sync_pair, [first], trigger="webhook")[first]
    counts = sandbox.counts()
    assert again.pipedrive_id == org["id"], again
    assert counts.pipedrive_calls_to("GET /api/v2/organizationFields") == 0, counts  # the rule named it
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0 and counts.pipedrive_searches == 0


def test_several_organizations_share_a_name_the_oldest_free_one_is_taken(sync_pair, sandbox):
    oldest = sandbox.pipedrive_create("organization", {"name": "Beta Co"})
    newer = sandbox.pipedrive_create("organization", {"name": "BETA Company"})
    first = sandbox.create_contact("Beta Company")
    outcome = sync_contacts(sync_pair, [first], trigger="webhook")[first]
    assert outcome.pipedrive_id == oldest and f"oldest of 2; also {newer}" in outcome.reason, outcome

    # A second Xero contact with the same normalized name does not take the linked one.
    second = sandbox.create_contact("Beta Co.")
    assert sync_contacts(sync_pair, [second], trigger="webhook")[second].pipedrive_id == newer


def test_webhooks_keep_the_index_fresh(sync_pair, sandbox):
    connection = sync_pair.pipedrive_connection
    contact_id = sandbox.create_contact("Delta Labs")
    sync_contacts(sync_pair, [contact_id], trigger="webhook")  # fills the index
    # Sales create an organization afterwards; its webhook (v2 body) reaches the index.
    made = sandbox.pipedrive_create("organization", {"name": "Epsilon Labs Limited"})
    pipedrive_index.observe_pipedrive_event(
        connection, "organization", "create", made, sandbox.organization(made)
    )
    later = sandbox.create_contact("Epsilon Labs Ltd")
    sandbox.reset_counters()
    assert sync_contacts(sync_pair, [later], trigger="webhook")[later].pipedrive_id == made
    counts = sandbox.counts()
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0 and counts.pipedrive_searches == 0

    pipedrive_index.observe_pipedrive_event(connection, "organization", "delete", made, None)
    assert not PipedriveIndexEntry.objects.filter(record_id=made).exists()
    # v1 "updated" body: custom fields at the top level, e-mails under "email".
    person = sandbox.pipedrive_create("person", {"name": "Zed"})
    pipedrive_index.observe_pipedrive_event(
        connection,
        "person",
        "updated",
        person,
        {"id": person, "name": "Zed", "email": [{"value": "z@x.example"}]},
    )
    assert [e.record_id for e in pipedrive_index.persons_by_email(connection, "Z@x.example")] == [person]


def test_when_the_index_cannot_answer_one_search_finds_the_organization(sync_pair, sandbox, monkeypatch):
    org_id = sandbox.pipedrive_create("organization", {"name": "Zeta Foods Limited"})
    contact_id = sandbox.create_contact("Zeta Foods Ltd")
    monkeypatch.setattr(pipedrive_index, "ensure_index", lambda *args, **kwargs: None)
    sandbox.reset_counters()
    outcome = sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id]
    counts = sandbox.counts()
    assert outcome.pipedrive_id == org_id and "searched" in outcome.reason, outcome
    assert counts.pipedrive_calls_to("GET /api/v2/organizations/search") == 1, counts
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0, counts
