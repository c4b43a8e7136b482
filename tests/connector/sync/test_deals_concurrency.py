"""One writer per record: concurrent syncs of the same invoices and payments create each deal and each
payment note once (and the contacts' organizations once)."""

import threading

import pytest
from django.db import connections as db_connections

from connector.models import SyncPair
from connector.sync import sync_records
from mapping.models import RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


def run_in_threads(count, target):
    errors = []
    start = threading.Barrier(count)

    def worker():
        try:
            start.wait()
            target()
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


@pytest.fixture
def stages(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


def test_four_workers_syncing_the_same_invoices_and_payments_write_each_once(sync_pair, sandbox, stages):
    contacts = [sandbox.create_contact(f"Concurrent Customer {n}") for n in range(3)]
    invoices = [sandbox.create_invoice(contacts[n % 3], amount=100 + n) for n in range(9)]
    payments = [sandbox.pay(invoice_id, 40) for invoice_id in invoices[:6]]
    sandbox.set_faults("pipedrive", latency_ms=20)  # widen the window two unserialized writers would need
    outcomes = []

    def sync():
        pair = SyncPair.objects.get(pk=sync_pair.pk)
        outcomes.append(sync_records(pair, "INVOICE", invoices, trigger="webhook"))
        outcomes.append(sync_records(pair, "PAYMENT", payments, trigger="webhook"))

    errors = run_in_threads(4, sync)

    assert not errors, errors
    assert {o.status for run in outcomes for o in run.values()} == {"done"}
    assert len(sandbox.organizations()) == 3
    deals = sandbox.deals()
    assert len(deals) == 9 and len(sandbox.notes()) == 6
    assert sum(1 for d in deals if d["stage_id"] == stages["Part paid"]) == 6
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="invoice").count() == 9
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="payment").count() == 6
