"""Credit thresholds that stay true: the README's worked example, step by step, against the sandboxes.

Limit 1,000 → AUTHORISED invoices 300 and 500 → a DRAFT of 250 → a payment of 300 → limit 100 → limit
deleted, with the limit kept per contact, per contact group and as the pair's default. After every step
the organization's figures and each deal's flag are asserted, with what the step cost: Xero reads, and
Pipedrive writes only for the records whose figures or flag changed. The pair's credit fields are the
recommended ones, made as the admin's "Create recommended custom fields" makes them.
"""

from decimal import Decimal

import pytest

from connector.setup import pipedrive_fields as pipedrive_setup
from connector.sync.invoices import sync_invoices
from connector.sync.payments import sync_payments
from mapping.models import CreditLimit
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]
GROUP = "Wholesale"
DEAL_PATCH = "PATCH /api/v2/deals/{id}"
ORG_PATCH = "PATCH /api/v2/organizations/{id}"


class Walk:
    """The customer of the example and what sales see of it in Pipedrive."""

    def __init__(self, pair, sandbox):
        self.pair, self.sandbox = pair, sandbox
        sandbox.add_pipeline("Xero invoices", STAGES)
        pipedrive_setup.create_recommended_fields(pair)
        self.available = sandbox.custom_field_code("organization", "Available credit")
        self.org_over = sandbox.custom_field_code("organization", "Over credit limit")
        self.deal_over = sandbox.custom_field_code("deal", "Over credit limit")
        self.contact_id = sandbox.create_contact("Walkthrough Traders Ltd")
        sandbox.add_to_contact_group(self.contact_id, GROUP)
        self.deals: dict[str, str] = {}  # name -> InvoiceID

    def organization(self) -> dict:
        [org] = self.sandbox.organizations()
        return org

    def available_credit(self):
        value = self.organization()["custom_fields"].get(self.available)
        return value["value"] if isinstance(value, dict) else value

    def org_flag(self):
        return self.organization()["custom_fields"].get(self.org_over)

    def flags(self) -> dict[str, str]:
        by_value = {d["value"]: d for d in self.sandbox.deals()}
        values = {"A 300": 300.0, "B 500": 500.0, "D 250": 250.0}
        return {
            name: by_value[value]["custom_fields"].get(self.deal_over)
            for name, value in values.items()
            if value in by_value
        }

    def deal_status(self, value: float) -> str:
        return next(d["status"] for d in self.sandbox.deals() if d["value"] == value)


def limit_row(scope: str, pair, contact_id: str, amount: str) -> CreditLimit:
    fields = {
        "contact": {"contact_id": contact_id, "contact_name": "Walkthrough Traders Ltd"},
        "group": {"contact_group": GROUP},
        "default": {},
    }[scope]
    return CreditLimit.objects.create(pair=pair, amount=Decimal(amount), **fields)


@pytest.mark.parametrize("scope", ["contact", "group", "default"])
def test_credit_thresholds_stay_true_through_the_worked_example(scope, sync_pair, sandbox, default_rules):
    walk = Walk(sync_pair, sandbox)
    # The customer is in Pipedrive before any limit exists: no figures, not over.
    invoice_ids = {"A 300": sandbox.create_invoice(walk.contact_id, amount=300)}
    sync_invoices(sync_pair, [invoice_ids["A 300"]], trigger="webhook")
    sandbox.void_invoice(invoice_ids["A 300"])  # start from a clean balance (voided: the deal is lost)
    sync_invoices(sync_pair, [invoice_ids["A 300"]], trigger="webhook")
    assert walk.available_credit() is None and walk.org_flag() == "No"
    sandbox.pipedrive_delete("deal", sandbox.deals()[0]["id"])  # the example's deals start now

    # 1. Limit 1,000 (saved: a worker re-checks the contact after the commit).
    sandbox.reset_counters()
    limit = limit_row(scope, sync_pair, walk.contact_id, "1000")
    counts = sandbox.counts()
    assert walk.available_credit() == 1000.0 and walk.org_flag() == "No"
    # The contact (its balance) and its open invoices: one read each for up to 100 contacts.
    assert counts.xero_calls == 2, counts
    assert counts.pipedrive_calls_to(ORG_PATCH) == 1 and counts.pipedrive_calls_to(DEAL_PATCH) == 0, counts

    # 2. AUTHORISED invoices of 300 and 500: outstanding 800, available 200. Each deal is compared with
    #    the available credit plus its own amount due (it is already in the outstanding): neither is over.
    invoice_ids = {
        "A 300": sandbox.create_invoice(walk.contact_id, amount=300),
        "B 500": sandbox.create_invoice(walk.contact_id, amount=500),
    }
    sync_invoices(sync_pair, list(invoice_ids.values()), trigger="webhook")
    assert walk.available_credit() == 200.0 and walk.org_flag() == "No"
    assert walk.flags() == {"A 300": "No", "B 500": "No"}

    # 3. A DRAFT of 250 (not a receivable yet: compared with the available credit alone): 250 > 200.
    sandbox.reset_counters()
    invoice_ids["D 250"] = sandbox.create_invoice(walk.contact_id, amount=250, status="DRAFT")
    sync_invoices(sync_pair, [invoice_ids["D 250"]], trigger="webhook")
    counts = sandbox.counts()
    assert walk.available_credit() == 200.0
    assert walk.flags() == {"A 300": "No", "B 500": "No", "D 250": "Yes"}
    # The other open deals were re-checked, and being unchanged cost no write; nor did the organization.
    assert counts.pipedrive_calls_to(DEAL_PATCH) == 0 and counts.pipedrive_calls_to(ORG_PATCH) == 0, counts
    assert counts.pipedrive_writes == 1, counts  # the new deal
    assert counts.xero_calls == 3, counts  # the invoice, its contact, the contact's open invoices

    # 4. A payment of 300 pays A in full: outstanding 500, available 500. D (250 ≤ 500) is no longer
    #    over although its invoice did not change; B (500 ≤ 500 + 500) stays "No" and is not written.
    sandbox.reset_counters()
    payment_id = sandbox.pay(invoice_ids["A 300"], 300)
    sync_payments(sync_pair, [payment_id], trigger="webhook")
    counts = sandbox.counts()
    assert walk.available_credit() == 500.0 and walk.org_flag() == "No"
    assert walk.flags() == {"A 300": "No", "B 500": "No", "D 250": "No"}
    assert walk.deal_status(300.0) == "won"
    assert counts.pipedrive_calls_to(DEAL_PATCH) == 2, counts  # A (paid, won) and D (flag cleared)
    assert counts.xero_calls == 4, counts  # the payment, its invoice, the contact, the open invoices

    # 5. Limit lowered to 100: available 100 - 500 = -400, the organization is over its limit; B
    #    (500 > -400 + 500) and D (250 > -400) are over; A is won, never flagged.
    sandbox.reset_counters()
    limit.amount = Decimal("100")
    limit.save()
    counts = sandbox.counts()
    assert walk.available_credit() == -400.0 and walk.org_flag() == "Yes"
    assert walk.flags() == {"A 300": "No", "B 500": "Yes", "D 250": "Yes"}
    assert counts.xero_calls == 2, counts
    assert counts.pipedrive_calls_to(DEAL_PATCH) == 2 and counts.pipedrive_calls_to(ORG_PATCH) == 1, counts

    # Saving the same limit again changes nothing: re-checked, nothing written.
    sandbox.reset_counters()
    limit.save()
    assert sandbox.counts().pipedrive_writes == 0

    # 6. Limit deleted: no limit applies. The figures are cleared and no deal is over ("No").
    sandbox.reset_counters()
    limit.delete()
    counts = sandbox.counts()
    assert walk.available_credit() is None and walk.org_flag() == "No"
    assert walk.flags() == {"A 300": "No", "B 500": "No", "D 250": "No"}
    assert counts.xero_calls == 2, counts
    assert counts.pipedrive_calls_to(DEAL_PATCH) == 2 and counts.pipedrive_calls_to(ORG_PATCH) == 1, counts


def test_a_limit_moved_to_another_contact_rechecks_both(sync_pair, sandbox, default_rules):
    walk = Walk(sync_pair, sandbox)
    other = sandbox.create_contact("Second Customer Ltd")
    invoices = [
        sandbox.create_invoice(walk.contact_id, amount=500),
        sandbox.create_invoice(other, amount=500),
    ]
    sync_invoices(sync_pair, invoices, trigger="webhook")
    limit = limit_row("contact", sync_pair, walk.contact_id, "100")
    by_name = {o["name"]: o for o in sandbox.organizations()}
    assert by_name["Walkthrough Traders Ltd"]["custom_fields"][walk.org_over] == "Yes"

    limit.contact_id, limit.contact_name = other, "Second Customer Ltd"
    limit.save()

    by_name = {o["name"]: o for o in sandbox.organizations()}
    first, second = by_name["Walkthrough Traders Ltd"], by_name["Second Customer Ltd"]
    assert (
        first["custom_fields"][walk.org_over] == "No" and first["custom_fields"].get(walk.available) is None
    )
    assert second["custom_fields"][walk.org_over] == "Yes"


def test_bulk_delete_of_limits_clears_the_flags(sync_pair, sandbox, default_rules):
    walk = Walk(sync_pair, sandbox)
    invoice_id = sandbox.create_invoice(walk.contact_id, amount=500, status="SUBMITTED")
    sync_invoices(sync_pair, [invoice_id], trigger="webhook")
    limit_row("contact", sync_pair, walk.contact_id, "100")
    limit_row("default", sync_pair, walk.contact_id, "50")
    assert walk.flags() == {"B 500": "Yes"}

    CreditLimit.objects.filter(pair=sync_pair).delete()  # the admin's "delete selected"

    assert walk.flags() == {"B 500": "No"} and walk.available_credit() is None
