"""Credit re-checks that start outside a record sync: a credit limit saved or deleted.

Above the contact and invoice syncs (it drives both), so that neither needs to know about the other's
re-check. A limit change re-reads the contacts it covers (their organizations get the new available
credit) and re-checks the over-credit flag of their open deals; when no limit applies any more, the
figures are cleared and the flags say "No" (see the README's credit section).
"""

from django.db import transaction
from django_q.tasks import async_task

from audit.models import SyncRecord
from audit.services import trigger_cause
from connector.sync.credit import contacts_under_limit
from connector.sync.invoices import InvoiceRun

LIMIT_CHANGED = "credit limit changed"


def limit_change_words(limit_row, *, deleted: bool = False) -> str:
    """ "credit limit changed by fiona" (or "deleted"): the admin names its user on the row it saves
    (``changed_by``); a save from elsewhere (a shell, a bulk import) is named without one."""
    words = "credit limit deleted" if deleted else LIMIT_CHANGED
    user = str(getattr(limit_row, "changed_by", "") or "").strip()
    return f"{words} by {user}"[:255] if user else words


def recheck_credit(
    pair, contact_ids: list[str], *, trigger: str = "manual", trigger_text: str = LIMIT_CHANGED
) -> None:
    """The contacts' organizations get their current credit figures and their open deals their flag:
    one Xero read of the contacts and one of their open invoices per 100 contacts; unchanged payloads
    cost no Pipedrive write. Every organization and deal re-checked gets a sync record naming
    ``trigger_text`` (e.g. "credit limit changed by fiona"), written or unchanged."""
    contact_ids = list(dict.fromkeys(contact_ids))
    if not contact_ids:
        return
    run = InvoiceRun(pair, trigger)
    with trigger_cause(SyncRecord.Trigger.CREDIT_RECHECK, trigger_text or LIMIT_CHANGED):
        run.refresh_contacts(contact_ids)
        run.reevaluate_open_deals(contact_ids)


def contacts_to_recheck(limit_row, previous=None) -> list[str]:
    """The contacts whose credit a saved or deleted limit row changes: those it covers now and, for an
    edited row, those it covered before (a limit moved from one contact or group to another)."""
    contacts = set(contacts_under_limit(limit_row))
    if previous is not None:
        contacts |= set(contacts_under_limit(previous))
    return sorted(contacts)


def queue_credit_recheck(pair_id: int, contact_ids: list[str], trigger_text: str = LIMIT_CHANGED) -> None:
    """Re-check in a worker once the transaction commits (Xero and Pipedrive are never called inside
    the admin's request or transaction); ``trigger_text`` names the change on the records."""
    if not contact_ids:
        return
    contact_ids = list(contact_ids)
    transaction.on_commit(
        lambda: async_task(
            "connector.tasks.recheck_credit",
            pair_id,
            contact_ids,
            trigger_text,
            task_name=f"credit re-check: pair {pair_id}",
        )
    )
