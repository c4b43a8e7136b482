"""Every deal a credit-limit change re-checks leaves a sync record naming the change and its user."""

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import SyncRecord
from connector.setup import pipedrive_fields as pipedrive_setup
from connector.sync.invoices import sync_invoices
from connector.sync.payments import sync_payments
from mapping.models import CreditLimit
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


@pytest.fixture
def customer(sync_pair, sandbox):
    """A customer with a DRAFT, a SUBMITTED and an AUTHORISED invoice, each with its deal."""
    sandbox.add_pipeline("Xero invoices", STAGES)
    pipedrive_setup.create_recommended_fields(sync_pair)
    contact_id = sandbox.create_contact("Limit Watchers Ltd")
    invoices = {
        status: sandbox.create_invoice(contact_id, amount=amount, status=status)
        for status, amount in (("DRAFT", 250), ("SUBMITTED", 400), ("AUTHORISED", 600))
    }
    sync_invoices(sync_pair, list(invoices.values()), trigger="webhook")
    assert len(sandbox.deals()) == 3
    return contact_id, invoices


def records_of(invoice_id):
    return list(SyncRecord.objects.filter(xero_type="invoice", xero_id=invoice_id).order_by("id"))


def test_a_limit_saved_in_the_admin_leaves_a_record_on_every_rechecked_deal(
    client, finance_user, sync_pair, sandbox, customer
):
    contact_id, invoices = customer
    before = {status: len(records_of(invoice_id)) for status, invoice_id in invoices.items()}
    client.force_login(finance_user)
    answer = client.post(
        reverse("admin:mapping_creditlimit_add"),
        {"pair": sync_pair.pk, "contact_id": contact_id, "contact_name": "Limit Watchers Ltd",
         "contact_group": "", "amount": "100.00", "currency": ""},
    )  # fmt: skip
    assert answer.status_code == 302, answer.context["adminform"].form.errors

    for status, invoice_id in invoices.items():
        rows = records_of(invoice_id)
        assert len(rows) == before[status] + 1, status
        assert rows[-1].trigger == "credit_recheck", status
        assert rows[-1].trigger_text == "credit limit changed by fiona", status
        assert rows[-1].trigger_description == "credit limit changed by fiona"
    organization = SyncRecord.objects.filter(xero_type="contact", xero_id=contact_id).order_by("id").last()
    assert organization.trigger_text == "credit limit changed by fiona"

    # Lowered again from the shell (no user): still a record per deal, the change named without a user.
    limit = CreditLimit.objects.get(pair=sync_pair)
    limit.amount = Decimal("50")
    limit.save()
    for status, invoice_id in invoices.items():
        rows = records_of(invoice_id)
        assert len(rows) == before[status] + 2, status
        assert rows[-1].trigger_text == "credit limit changed", status


def test_a_payment_names_the_recheck_of_the_other_deals(sync_pair, sandbox, customer):
    contact_id, invoices = customer
    CreditLimit.objects.create(pair=sync_pair, contact_id=contact_id, amount=Decimal("1000"))
    count = len(records_of(invoices["DRAFT"]))
    payment = sandbox.pay(invoices["AUTHORISED"], 600)
    sync_payments(sync_pair, [payment], trigger="webhook")

    draft = records_of(invoices["DRAFT"])
    assert len(draft) == count + 1
    assert draft[-1].trigger == "credit_recheck"
    assert draft[-1].trigger_text == "credit re-check after a payment"
    [paid] = SyncRecord.objects.filter(xero_type="payment", xero_id=payment)
    assert paid.trigger == "webhook" and paid.trigger_text == ""
