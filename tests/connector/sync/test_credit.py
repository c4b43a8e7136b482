"""Credit: available credit on the organization, the over-limit flag on open deals (the "deal value
threshold"), re-evaluated when balances change. Pure functions first, then against the sandboxes."""

from decimal import Decimal

import pytest

from connector.sync import credit
from connector.sync.invoices import refresh_open_deals, sync_invoices
from connector.sync.payments import sync_payments
from mapping.models import CreditLimit, FieldMapping
from mapping.rules import deal_context
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

INVOICE = {"InvoiceID": "i-1", "CurrencyCode": "NZD"}
STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


def contact(outstanding, contact_id="c-1", groups=()):
    return {
        "ContactID": contact_id,
        "ContactGroups": [{"Name": g} for g in groups],
        "Balances": {"AccountsReceivable": {"Outstanding": outstanding, "Overdue": 0.0}},
    }


def test_contact_context_limit_minus_outstanding(sync_pair):
    CreditLimit.objects.create(pair=sync_pair, contact_id="c-1", amount=Decimal("1000"))
    figures = credit.contact_credit_context(sync_pair, contact(800.0))
    assert (
        figures["CreditLimit"] == 1000
        and figures["AvailableCredit"] == 200
        and not figures["OverCreditLimit"]
    )
    over = credit.contact_credit_context(sync_pair, contact(1200.5))
    assert over["AvailableCredit"] == -200.5 and over["OverCreditLimit"] is True


def test_no_limit_means_no_figures_and_no_flag(sync_pair):
    figures = credit.contact_credit_context(sync_pair, contact(5000.0))
    assert "CreditLimit" not in figures and "AvailableCredit" not in figures
    assert deal_context(figures, INVOICE, deal_value=10_000, deal_open=True)["OverCreditLimit"] is False
    assert not credit.credit_configured(sync_pair)


@pytest.mark.parametrize(
    ("value", "deal_open", "flagged"),
    [(500, True, True), (200, True, False), (200.01, True, True), (500, False, False), (None, True, False)],
)
def test_deal_flag_only_for_open_deals_above_available_credit(value, deal_open, flagged):
    figures = {"CreditLimit": Decimal("1000"), "AvailableCredit": Decimal("200"), "OverCreditLimit": False}
    assert deal_context(figures, INVOICE, deal_value=value, deal_open=deal_open)["OverCreditLimit"] is flagged


def test_an_invoice_in_receivables_is_not_counted_twice(sync_pair, sandbox, credit_fields):
    """Limit 1,000; invoices 300 and 500 outstanding: 800 of 1,000 used, so neither deal is over."""
    available, flag = credit_fields
    contact_id = sandbox.create_contact("Within Limit Ltd")
    CreditLimit.objects.create(pair=sync_pair, contact_id=contact_id, amount=Decimal("1000"))
    ids = [sandbox.create_invoice(contact_id, amount=300), sandbox.create_invoice(contact_id, amount=500)]

    sync_invoices(sync_pair, ids, trigger="webhook")

    assert sandbox.organizations()[0]["custom_fields"][available] == 200.0
    assert sorted((d["value"], d["custom_fields"][flag]) for d in sandbox.deals()) == [
        (300.0, "No"),
        (500.0, "No"),
    ]


@pytest.mark.parametrize(
    ("status", "value", "due", "flagged"),
    [
        ("AUTHORISED", 500, 500, False),  # in receivables: 500 ≤ 200 + 500
        ("AUTHORISED", 800, 500, True),  # part paid 300, value Total 800 > 200 + 500
        ("DRAFT", 500, 500, True),  # not in receivables: 500 > 200
        ("SUBMITTED", 200, 200, False),  # 200 ≤ 200
    ],
)
def test_deal_flag_counts_an_authorised_invoice_once(status, value, due, flagged):
    figures = {"CreditLimit": Decimal("1000"), "AvailableCredit": Decimal("200"), "OverCreditLimit": False}
    invoice = {**INVOICE, "Status": status, "AmountDue": due}
    assert deal_context(figures, invoice, deal_value=value, deal_open=True)["OverCreditLimit"] is flagged


def test_limit_from_a_pipedrive_organization_field_wins_over_the_connector_default(sync_pair):
    CreditLimit.objects.create(pair=sync_pair, amount=Decimal("50"))  # the pair's default
    sync_pair.options = {**sync_pair.options, "credit_limit_field": "abc123"}
    organization = {"custom_fields": {"abc123": {"value": 900, "currency": "NZD"}}}
    assert credit.credit_limit(sync_pair, contact(0.0), organization) == Decimal("900")
    assert credit.credit_limit(sync_pair, contact(0.0), {"custom_fields": {"abc123": None}}) == Decimal("50")
    assert credit.credit_configured(sync_pair)


@pytest.fixture
def credit_fields(sync_pair, sandbox, default_rules):
    """An organization field for the available credit and a deal field for the flag, mapped by rows
    as finance staff would add them in the admin."""
    sandbox.add_pipeline("Xero invoices", STAGES)
    available = sandbox.add_custom_field("organization", "Available credit", "double")
    flag = sandbox.add_custom_field("deal", "Over credit limit", "varchar")
    FieldMapping.objects.create(
        pair=sync_pair,
        target="organization",
        source_path="Connector.AvailableCredit",
        pipedrive_field=available,
        transform="number",
        transform_options={"clear_when_empty": True},
    )
    FieldMapping.objects.create(
        pair=sync_pair, target="deal", source_path="Connector.OverCreditLimit", pipedrive_field=flag
    )
    return available, flag


def test_available_credit_lands_on_the_organization_and_open_deals_over_it_are_flagged(
    sync_pair, sandbox, credit_fields
):
    available, flag = credit_fields
    contact_id = sandbox.create_contact("Credit Customer Ltd")
    CreditLimit.objects.create(pair=sync_pair, contact_id=contact_id, amount=Decimal("1000"))
    small = sandbox.create_invoice(contact_id, amount=300)
    large = sandbox.create_invoice(contact_id, amount=800)
    deal_of = {}

    sync_invoices(sync_pair, [small, large], trigger="webhook")

    [org] = sandbox.organizations()
    assert org["custom_fields"][available] == -100.0  # 1,000 - (300 + 800) outstanding
    for deal in sandbox.deals():
        deal_of[deal["value"]] = deal
    # Each invoice is already in the outstanding: its deal is compared with available + its AmountDue.
    assert deal_of[800.0]["custom_fields"][flag] == "Yes"  # 800 > -100 + 800
    assert deal_of[300.0]["custom_fields"][flag] == "Yes"  # 300 > -100 + 300

    # Paying the small invoice in full: outstanding 800, available 200: 800 ≤ 200 + 800, no longer over.
    payment_id = sandbox.pay(small, 300)
    sandbox.reset_counters()
    sync_payments(sync_pair, [payment_id], trigger="webhook")

    assert sandbox.organization(org["id"])["custom_fields"][available] == 200.0
    deals = {d["value"]: d for d in sandbox.deals()}
    assert deals[800.0]["custom_fields"][flag] == "No"  # re-evaluated although its invoice did not change
    assert deals[300.0]["custom_fields"][flag] == "No" and deals[300.0]["status"] == "won"
    assert sandbox.counts().pipedrive_searches == 0


def test_refresh_open_deals_after_a_limit_change(sync_pair, sandbox, credit_fields):
    _, flag = credit_fields
    contact_id = sandbox.create_contact("Limit Change Ltd")
    limit = CreditLimit.objects.create(pair=sync_pair, contact_id=contact_id, amount=Decimal("1000"))
    invoice_id = sandbox.create_invoice(contact_id, amount=400)
    sync_invoices(sync_pair, [invoice_id], trigger="webhook")
    assert sandbox.deals()[0]["custom_fields"][flag] == "No"

    limit.amount = Decimal("100")
    limit.save()
    refresh_open_deals(sync_pair, [contact_id], trigger="manual")
    assert sandbox.deals()[0]["custom_fields"][flag] == "Yes"

    sandbox.reset_counters()
    refresh_open_deals(sync_pair, [contact_id], trigger="manual")  # nothing changed: nothing written
    assert sandbox.counts().pipedrive_writes == 0


def test_editing_a_limit_in_the_admin_rechecks_the_organization_and_its_open_deals(
    sync_pair, sandbox, credit_fields, admin_client
):
    available, flag = credit_fields
    contact_id = sandbox.create_contact("Admin Limit Ltd")
    limit = CreditLimit.objects.create(pair=sync_pair, contact_id=contact_id, amount=Decimal("1000"))
    sync_invoices(sync_pair, [sandbox.create_invoice(contact_id, amount=400)], trigger="webhook")
    [org] = sandbox.organizations()
    assert org["custom_fields"][available] == 600.0 and sandbox.deals()[0]["custom_fields"][flag] == "No"

    response = admin_client.post(
        f"/admin/mapping/creditlimit/{limit.pk}/change/",
        {"pair": sync_pair.pk, "contact_id": contact_id, "contact_name": "Admin Limit Ltd",
         "contact_group": "", "amount": "100.00", "currency": ""},
        follow=True,
    )  # fmt: skip

    assert "Credit re-check queued for 1 contact" in response.content.decode()
    # Sync-mode task queue: the re-check ran after the commit.
    assert sandbox.organization(org["id"])["custom_fields"][available] == -300.0
    assert sandbox.deals()[0]["custom_fields"][flag] == "Yes"  # 400 > -300 + 400
