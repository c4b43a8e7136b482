"""The harness itself: the pair's clients reach the sandboxes and the counters see their calls."""

from connector.connections.services import pipedrive_client, xero_client
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_pair_clients_reach_the_sandboxes_and_are_counted(sync_pair, sandbox):
    contact_id = sandbox.create_contact(
        "Harness Ltd",
        email="ap@harness.example",
        persons=[{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@harness.example"}],
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=250)
    sandbox.pay(invoice_id, 100)

    xero = xero_client(sync_pair.xero_connection)
    [contact] = xero.get_contacts(ids=[contact_id])
    assert contact["Name"] == "Harness Ltd" and contact["ContactPersons"][0]["FirstName"] == "Ann"
    assert contact["Balances"]["AccountsReceivable"]["Outstanding"] == 150.0
    [invoice] = xero.get_invoices(ids=[invoice_id])
    assert invoice["Total"] == 250.0 and invoice["AmountDue"] == 150.0

    pipedrive = pipedrive_client(sync_pair.pipedrive_connection)
    created = pipedrive.create("organization", {"name": "Harness Ltd"})
    pipedrive.create("person", {"name": "Ann Lee", "org_id": created["id"]})
    assert [o["name"] for o in sandbox.organizations()] == ["Harness Ltd"]
    assert [p["org_id"] for p in sandbox.persons()] == [created["id"]]

    counts = sandbox.counts()
    assert counts.xero_calls == 2, counts
    assert counts.pipedrive_writes == 2 and counts.pipedrive_tokens == 10, counts
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 1, counts
