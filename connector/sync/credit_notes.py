"""Credit notes: a credit note changes what its customer owes, so its event re-syncs what it touches.

Xero announces a credit note (CREDITNOTE webhook); the connector keeps no record of its own for it.
It reads the credit note, then syncs the invoices it is allocated to (their amount due, stage and
value) and its contact (outstanding and overdue balances, available credit) as Xero has them now.
"""

from connector.sync import contacts, credit, invoices
from connector.sync.common import Outcomes, RecordOutcome
from connector.sync.invoices import InvoiceRun, chunks, is_xero_id

WHERE_BATCH = 40  # ids per where clause, as for payments


def _where(credit_note_ids: list[str]) -> str:
    return " OR ".join(f'CreditNoteID==Guid("{cid}")' for cid in credit_note_ids)


def touched(credit_note: dict) -> tuple[list[str], list[str]]:
    """(InvoiceIDs the credit note is allocated to, its ContactID) — what its change can move."""
    invoice_ids = [
        str(a["Invoice"]["InvoiceID"])
        for a in credit_note.get("Allocations") or []
        if (a.get("Invoice") or {}).get("InvoiceID") and not a.get("IsDeleted")
    ]
    contact_id = (credit_note.get("Contact") or {}).get("ContactID")
    return list(dict.fromkeys(invoice_ids)), [str(contact_id)] if contact_id else []


def _worst(outcomes: list[RecordOutcome]) -> RecordOutcome:
    for status in ("retry", "failed"):
        for outcome in outcomes:
            if outcome.status == status:
                return RecordOutcome(status, outcome.reason)
    return RecordOutcome("done", "", action="updated")


def sync_credit_notes(
    pair, ids: list[str], *, trigger: str = "webhook", on_outcome=None
) -> dict[str, RecordOutcome]:
    """Re-sync the invoices and contacts of these Xero credit notes; ``{CreditNoteID: RecordOutcome}``
    (``on_outcome`` told of each as it is known)."""
    outcomes: dict[str, RecordOutcome] = Outcomes(on_outcome)
    wanted = []
    for credit_note_id in dict.fromkeys(str(i).strip() for i in ids):
        if is_xero_id(credit_note_id):
            wanted.append(credit_note_id)
        else:
            outcomes[credit_note_id] = RecordOutcome("ignored", "Not a Xero CreditNoteID.")
    xero = InvoiceRun(pair, trigger).xero
    fetched: dict[str, dict] = {}
    for chunk in chunks(wanted, WHERE_BATCH):
        fetched |= {str(c["CreditNoteID"]).lower(): c for c in xero.get_credit_notes(where=_where(chunk))}
    found = {}
    for credit_note_id in wanted:
        if credit_note_id.lower() in fetched:
            found[credit_note_id] = fetched[credit_note_id.lower()]
        else:
            outcomes[credit_note_id] = RecordOutcome("ignored", "Xero has no such credit note.")
    if not found:
        return outcomes
    invoice_ids = list(dict.fromkeys(i for c in found.values() for i in touched(c)[0]))
    contact_ids = list(dict.fromkeys(i for c in found.values() for i in touched(c)[1]))
    # The contact first: an invoice's deal needs its organization.
    contact_outcomes = contacts.sync_contacts(pair, contact_ids, trigger=trigger) if contact_ids else {}
    with credit.recheck_reason("credit re-check after a credit note"):
        invoice_outcomes = invoices.sync_invoices(pair, invoice_ids, trigger=trigger) if invoice_ids else {}
    for credit_note_id, credit_note in found.items():
        its_invoices, its_contact = touched(credit_note)
        results = [invoice_outcomes[i] for i in its_invoices if i in invoice_outcomes]
        results += [contact_outcomes[c] for c in its_contact if c in contact_outcomes]
        outcomes[credit_note_id] = _worst(results)
    return outcomes
