"""Sync services: the current state of Xero records written to Pipedrive.

``sync_records`` is the one entry point the webhook drain, backfills and replays use.
"""

from connector.sync.common import RecordOutcome
from connector.sync.record_types import BY_CATEGORY

__all__ = ["RecordOutcome", "sync_records"]


def sync_records(pair, category: str, resource_ids: list[str], *, trigger: str = "webhook", on_outcome=None):
    """Sync these Xero records (category CONTACT, INVOICE, PAYMENT or CREDITNOTE) as Xero has them now.

    Returns ``{resource_id: RecordOutcome}``; one record's failure is that record's outcome, not
    an exception: status "retry" for a transient problem (5xx, timeout), "failed" for a permanent
    one. Whole-batch problems raise: RateLimited, BudgetExhausted, ConnectionBroken, AuthExpired.
    ``on_outcome(resource_id, outcome)``, when given, is called as each record's sync ends.
    """
    record_type = BY_CATEGORY.get(category.upper())
    if record_type is None:
        return {rid: RecordOutcome("ignored", f"Category {category} is not synced") for rid in resource_ids}
    return record_type.sync(pair, list(dict.fromkeys(resource_ids)), trigger=trigger, on_outcome=on_outcome)
