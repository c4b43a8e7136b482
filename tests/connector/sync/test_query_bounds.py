"""Database queries per record sync (contact, invoice, payment), bounded: a new N+1 read or a repeated
lookup in the sync path fails here. The bounds are the measured figures with a little headroom."""

import pytest

from connector.sync import sync_records
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]
# Measured in this test, one record alone with the per-run loads included. Dec 2026: on SQLite 129, 92
# and 105 before the cuts (the database limiter spent each window in a transaction of its own and wrote
# every *-Remaining header; the mapping and stage rows took two queries a target or kind; the credit
# limits were read per contact); after, 94, 60 and 71 on SQLite, 102, 58 and 76 on PostgreSQL (its
# advisory locks are statements too). Bounds: the larger figure plus a little headroom.
CONTACT_QUERIES = 106  # a first sync of the pair (index and mapping rows loaded)
INVOICE_QUERIES = 64
PAYMENT_QUERIES = 80


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


@pytest.fixture
def customer(sync_pair, sandbox, stages):
    contact_id = sandbox.create_contact(
        "Bounded Customer Ltd",
        persons=[{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@bounded.example"}],
    )
    invoice_id = sandbox.create_invoice(contact_id, amount=1000, currency="NZD")
    return contact_id, invoice_id


def test_one_contact_sync_is_bounded(sync_pair, sandbox, customer, django_assert_max_num_queries):
    contact_id, _ = customer
    with django_assert_max_num_queries(CONTACT_QUERIES):
        outcome = sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")[contact_id]
    assert outcome.status == "done" and len(sandbox.organizations()) == 1


def test_one_invoice_sync_is_bounded(sync_pair, sandbox, customer, django_assert_max_num_queries):
    contact_id, invoice_id = customer
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    with django_assert_max_num_queries(INVOICE_QUERIES):
        outcome = sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")[invoice_id]
    assert outcome.status == "done" and len(sandbox.deals()) == 1


def test_one_payment_sync_is_bounded(sync_pair, sandbox, customer, django_assert_max_num_queries):
    contact_id, invoice_id = customer
    sync_records(sync_pair, "CONTACT", [contact_id], trigger="webhook")
    sync_records(sync_pair, "INVOICE", [invoice_id], trigger="webhook")
    payment_id = sandbox.pay(invoice_id, 400, reference="EFT 1")
    with django_assert_max_num_queries(PAYMENT_QUERIES):
        outcome = sync_records(sync_pair, "PAYMENT", [payment_id], trigger="webhook")[payment_id]
    assert outcome.status == "done" and len(sandbox.notes()) == 1
