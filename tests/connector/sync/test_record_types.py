"""The registry of Xero record types is the one list: receivers, sync, backfill and reconciliation
all follow it (connector/sync/record_types.py)."""

from connector.intake.inbox import storage
from connector.operations import reconciliation
from connector.operations.backfill import paging
from connector.sync import record_types, sync_records
from connector.sync.record_types import RECORD_TYPES


def test_every_category_the_inbox_keeps_has_exactly_one_entry():
    categories = [t.category for t in RECORD_TYPES]
    assert len(categories) == len(set(categories))
    assert set(storage.XERO_SYNCED_CATEGORIES) == set(categories)


def test_backfill_and_reconciliation_walk_the_types_in_the_registry_order():
    order = [t.resource for t in RECORD_TYPES]
    for table in (paging.ORDER, reconciliation.ORDER, reconciliation.CATEGORIES):
        assert list(table) == [r for r in order if r in table]
    assert list(paging.ORDER) == ["Contacts", "Invoices", "Payments"]  # contacts before what names them
    assert reconciliation.WHERE["Invoices"] == 'Type=="ACCREC"'


def test_sync_records_runs_the_registry_entry_and_ignores_other_categories(monkeypatch):
    seen = []
    entry = record_types.BY_CATEGORY["INVOICE"]
    fake = record_types.XeroRecordType(
        entry.category, entry.resource, entry.id_field, entry.audit_label,
        lambda pair, ids, trigger, on_outcome: seen.append((ids, trigger)) or {},
    )  # fmt: skip
    monkeypatch.setitem(record_types.BY_CATEGORY, "INVOICE", fake)
    sync_records(None, "invoice", ["a", "b", "a"], trigger="replay")
    assert seen == [(["a", "b"], "replay")]
    ignored = sync_records(None, "BANKTRANSACTION", ["x"])
    assert ignored["x"].status == "ignored"
