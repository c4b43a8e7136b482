"""Credit re-checks that start outside a record sync: a credit limit saved or deleted.

Above the contact and invoice syncs (it drives both), so that neither needs to know about the other's
re-check. A limit change re-reads the contacts it covers (their organizations get the new available
credit) and re-checks the over-credit flag of their open deals; when no limit applies any more, the
figures are cleared and the flags say "No" (see the README's credit section).
"""

from django.db import transaction
from django_q.tasks import async_task

from connector.sync.credit import contacts_under_limit
from connector.sync.invoices import InvoiceRun


def recheck_credit(pair, contact_ids: list[str], *, trigger: str = "manual") -> None:
    """The contacts' organizations get their current credit figures and their open deals their flag:
    one Xero read of the contacts and one of their open invoices per 100 contacts; unchanged payloads
    cost no Pipedrive write."""
    contact_ids = list(dict.fromkeys(contact_ids))
    if not contact_ids:
        return
    run = InvoiceRun(pair, trigger)
    run.refresh_contacts(contact_ids)
    run.reevaluate_open_deals(contact_ids)


def contacts_to_recheck(limit_row, previous=None) -> list[str]:
    """The contacts whose credit a saved or deleted limit row changes: those it covers now and, for an
    edited row, those it covered before (a limit moved from one contact or group to another)."""
    contacts = set(contacts_under_limit(limit_row))
    if previous is not None:
        contacts |= set(contacts_under_limit(previous))
    return sorted(contacts)


def queue_credit_recheck(pair_id: int, contact_ids: list[str]) -> None:
    """Re-check in a worker once the transaction commits (Xero and Pipedrive are never called inside
    the admin's request or transaction)."""
    if not contact_ids:
        return
    contact_ids = list(contact_ids)
    transaction.on_commit(
        lambda: async_task(
            "connector.tasks.recheck_credit",
            pair_id,
            contact_ids,
            task_name=f"credit re-check: pair {pair_id}",
        )
    )
