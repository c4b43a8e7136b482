"""What syncing contacts costs, counted by the sandboxes: Xero calls, Pipedrive tokens and writes."""

from connector.sync.contacts import sync_contacts
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_100_new_contacts_with_1000_organizations_in_pipedrive(sync_pair, sandbox):
    sandbox.bulk_organizations([f"Existing Customer {n:04d} Ltd" for n in range(1000)])
    ids = [
        sandbox.create_contact(
            f"New Customer {n:03d} Limited",
            first_name="Pat",
            last_name=f"Buyer{n:03d}",
            email=f"pat{n:03d}@new-customer.example",
        )
        for n in range(100)
    ]
    sandbox.reset_counters()

    outcomes = sync_contacts(sync_pair, ids, trigger="backfill")

    counts = sandbox.counts()
    figures = f"100 new contacts with 1,000 organizations in Pipedrive: {counts}"
    assert [o.action for o in outcomes.values()] == ["created"] * 100, figures
    assert counts.xero_calls <= 2, figures
    assert counts.pipedrive_tokens <= 1100, figures
    assert counts.pipedrive_searches == 0, figures
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 100, figures
    assert counts.pipedrive_calls_to("POST /api/v2/persons") == 100, figures
    assert len(sandbox.organizations()) == 1100 and len(sandbox.persons()) == 100

    sandbox.reset_counters()
    again = sync_contacts(sync_pair, ids, trigger="backfill")
    counts = sandbox.counts()
    figures = f"re-sync of 100 unchanged contacts: {counts}"
    assert [o.action for o in again.values()] == ["unchanged"] * 100, figures
    assert counts.pipedrive_writes == 0, figures
    assert counts.pipedrive_tokens == 0 and counts.xero_calls <= 2, figures
