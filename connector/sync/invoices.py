"""Invoices → deals: Xero sales invoices (ACCREC) become deals on the contact's organization.

One run (``InvoiceRun``) fetches invoices in batches of up to 100 (``GET /Invoices?IDs=``), makes
sure their contacts are in Pipedrive with fresh balances (one ``sync_contacts`` call per batch), then
writes each deal under its record lock: title, value and currency from the mapping engine, the stage
and status from the stage table (``stages.StageTable``), the over-credit flag from the contact's credit
figures (``credit.ContactCredit``). One invoice's failure is that invoice's outcome; whole-batch
problems (limits, budget, broken connection) raise.

After a batch, the contacts' other open deals are re-checked (``reevaluate_open_deals``): their
over-credit flag depends on the contact's balance, which the batch may have changed.
"""

import logging
import re
import time
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.utils import timezone

from audit.models import SyncRecord
from audit.services import trigger_cause
from connector.connections.services import pipedrive_client, xero_client
from connector.errors import ConnectorError, ServerError, ValidationFailed
from connector.options import pair_options
from connector.sync import credit, ledger, reminders
from connector.sync.common import (
    RETRY_ERRORS,
    Outcomes,
    RecordOutcome,
    SyncProblem,
    audit,
    get_link,
    linked_id,
    live_link,
    mark_creating,
    record_lock,
    retry_outcome,
    save_link,
    write_record,
)
from connector.sync.contacts import sync_contacts
from connector.sync.pipedrive_index import BATCH_ERRORS
from connector.sync.stages import CLOSED_DEAL_STATUSES, StageTable
from mapping.choices import CLOSED_WITHOUT_DEAL
from mapping.engine import map_deal, payload_hash
from mapping.models import FieldMapping, RecordLink
from mapping.rules import deal_context, field_rules

logger = logging.getLogger(__name__)

__all__ = ["InvoiceRun", "SyncProblem", "refresh_open_deals", "sync_invoices"]

BATCH_SIZE = 100  # GUIDs per GET /Invoices?IDs= (Xero pages at 100; the URL stays under 4 kB)
SALES = "ACCREC"
CONTACT_FRESH_SECONDS = 60.0  # a contact read this recently by the same run is not read again

_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def is_xero_id(value: str) -> bool:
    """Xero refuses a whole ``IDs=`` or ``where`` query for one malformed id: check each first."""
    return bool(_GUID.match(value))


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class InvoiceRun:
    """One sync run of invoices: clients, rules and options, and what is fetched once per run."""

    def __init__(self, pair, trigger: str):
        self.pair = pair
        self.trigger = trigger
        options = pair_options(pair)
        self.value_from = options.deal_value_from
        self.title_template = options.deal_title_template
        self.create_deals = options.create_deals
        self._xero = None
        self._pipedrive = None
        self._deal_rules: list[FieldMapping] | None = None
        self._credit: bool | None = None
        self.stages = StageTable(pair, lambda: self.pipedrive)
        self.credit = credit.ContactCredit(pair, lambda: self.xero, lambda: self.pipedrive)
        self.contact_failures: dict[str, str] = {}
        self.contact_retries: dict[str, str] = {}  # contacts that failed transiently
        # A backfill sets this: the contacts' links of a batch are read in two queries once its contacts
        # are synced (it holds the pair's drain lock meanwhile), not twice per invoice.
        self.prefetch_contact_links = False
        # After a batch, the contacts' other open deals are re-checked (their credit flag follows the
        # contact's balance). The overdue pass turns it off: a passing due date changes no balance.
        self.recheck_other_deals = True
        self._org_links: dict[str, RecordLink] = {}  # ContactID -> its live organization link
        self._primary_persons: dict[str, int] = {}  # ContactID -> its primary person's id
        self._prefetched: set[str] = set()  # the ContactIDs whose primary person the batch read
        # ContactID -> when this run last read and synced it (time.monotonic): a contact with invoices
        # in several batches of one run (a payment run, the overdue pass's 100-id chunks) is read once,
        # not once a batch; a long run (a backfill) reads it again after CONTACT_FRESH_SECONDS.
        self._contacts_refreshed: dict[str, float] = {}

    # --- what is fetched or read once per run -------------------------------------------
    @property
    def xero(self):
        if self._xero is None:
            self._xero = xero_client(self.pair.xero_connection)
        return self._xero

    @property
    def pipedrive(self):
        if self._pipedrive is None:
            self._pipedrive = pipedrive_client(self.pair.pipedrive_connection)
        return self._pipedrive

    @property
    def deal_rules(self):
        if self._deal_rules is None:
            self._deal_rules = field_rules(self.pair, "deal")
        return self._deal_rules

    @property
    def credit_applies(self) -> bool:
        if self._credit is None:
            self._credit = credit.credit_configured(self.pair)
        return self._credit

    # --- contacts: in Pipedrive, with fresh balances -----------------------------------------
    def refresh_contacts(self, contact_ids: list[str]) -> None:
        """Sync the contacts of a batch once: creates the missing ones, refreshes the balances of the
        others (an unchanged contact costs no Pipedrive write). Failures are kept per contact; the
        contacts read are kept for the credit figures (not read again)."""
        now = time.monotonic()
        fresh_since = now - CONTACT_FRESH_SECONDS
        contact_ids = [
            cid
            for cid in contact_ids
            if self._contacts_refreshed.get(cid.lower(), fresh_since) <= fresh_since
        ]
        if not contact_ids:
            return
        fetched: dict[str, dict] = {}
        outcomes = sync_contacts(self.pair, contact_ids, trigger=self.trigger, fetched=fetched)
        self.credit.remember(fetched)
        for contact_id in contact_ids:
            if outcomes.get(contact_id) is None or outcomes[contact_id].status not in ("failed", "retry"):
                self._contacts_refreshed[contact_id.lower()] = now
        for contact_id, outcome in outcomes.items():
            if outcome.status == "failed":
                self.contact_failures[contact_id] = outcome.reason
            elif outcome.status == "retry":
                self.contact_retries[contact_id] = outcome.reason

    # --- one batch ------------------------------------------------------------------------
    def sync_batch(self, invoices: list[dict], *, refresh_contacts: bool = True) -> dict[str, RecordOutcome]:
        """Sync fetched invoices; returns an outcome per InvoiceID."""
        sales = [inv for inv in invoices if inv.get("Type") == SALES]
        ledger.remember_invoices(self.pair, sales)
        contact_ids = _contact_ids(sales)  # a malformed invoice (no contact) fails alone in sync_one
        if self.prefetch_contact_links:
            linked = self._live_org_links(contact_ids)
            missing = [cid for cid in contact_ids if cid not in linked]
        else:
            missing = [cid for cid in contact_ids if not live_link(self.pair, "contact", cid, "organization")]
        # Missing contacts are created first; with ``refresh_contacts`` the others' balances are
        # refreshed in the same call (invoice and payment changes do not bump a Xero contact).
        synced = contact_ids if refresh_contacts else missing
        self.refresh_contacts(synced)
        if self.prefetch_contact_links:
            self._prefetch_contact_links(contact_ids, linked, synced)
        if self.credit_applies:
            self.credit.load(contact_ids)
        outcomes = {}
        for invoice in invoices:
            outcomes[str(invoice.get("InvoiceID") or "")] = self.sync_one(invoice)
        # Reminders of invoices now paid, voided or re-dated are marked done (one query when none).
        reminders.close_reminders(self.pair, sales, lambda: self.pipedrive)
        return outcomes

    def _live_org_links(self, contact_ids: list[str]) -> dict[str, RecordLink]:
        """The live organization links of these contacts, by ContactID, in one query."""
        if not contact_ids:
            return {}
        rows = RecordLink.objects.filter(
            pair=self.pair, xero_type="contact", xero_id__in=contact_ids, pipedrive_type="organization",
            state=RecordLink.State.LINKED, pipedrive_id__isnull=False,
        )  # fmt: skip
        return {link.xero_id: link for link in rows}

    def _prefetch_contact_links(self, contact_ids: list[str], linked: dict, synced: list[str]) -> None:
        """The live organization links and primary persons of the batch's contacts once they are synced,
        in three queries (what ``live_link`` and ``primary_person_id`` read one invoice at a time):
        ``linked`` (read before the contacts' sync), read again for the contacts it ``synced``."""
        again = self._live_org_links(synced)
        self._org_links = {cid: link for cid, link in linked.items() if cid not in synced} | again
        self._prefetched = set(contact_ids)
        persons: dict[str, int] = {}
        prefixes = Q()
        for contact_id in contact_ids:
            prefixes |= Q(xero_id__startswith=f"{contact_id}:")
        if contact_ids:
            rows = RecordLink.objects.filter(
                prefixes, pair=self.pair, xero_type="contact_person", pipedrive_type="person",
                state=RecordLink.State.LINKED, pipedrive_id__isnull=False,
            ).order_by("id")  # fmt: skip
            for xero_id, pipedrive_id in rows.values_list("xero_id", "pipedrive_id"):
                persons.setdefault(xero_id.split(":", 1)[0], linked_id(pipedrive_id))
        direct = RecordLink.objects.filter(
            pair=self.pair, xero_type="contact", xero_id__in=contact_ids, pipedrive_type="person"
        )
        if direct.exists():  # ``primary_person_id`` prefers such a link: leave these to it
            self._prefetched = set()
        self._primary_persons = persons

    def _org_link(self, contact_id: str) -> RecordLink | None:
        if self.prefetch_contact_links and contact_id in self._org_links:
            return self._org_links[contact_id]
        return live_link(self.pair, "contact", contact_id, "organization")

    def _primary_person(self, contact_id: str) -> int | None:
        if self.prefetch_contact_links and contact_id in self._prefetched:
            return self._primary_persons.get(contact_id)
        return primary_person_id(self.pair, contact_id)

    def _audit(self, invoice_id: str, **fields):
        """The audit row of one invoice sync."""
        source = getattr(self, "_source", None)
        if source is not None and str(source.get("InvoiceID")) != str(invoice_id):
            source = None
        audit(self.pair, "invoice", invoice_id, trigger=self.trigger, source=source, **fields)

    def sync_one(self, invoice: dict) -> RecordOutcome:
        invoice_id = str(invoice["InvoiceID"])
        started = timezone.now()
        self._source = invoice  # the Xero record every audit row of this sync names
        if invoice.get("Type") != SALES:
            reason = f"Only sales invoices (ACCREC) become deals; this one is {invoice.get('Type')}."
            self._audit(invoice_id, action="skipped", started_at=started, reason=reason)
            return RecordOutcome("ignored", reason, action="skipped")
        with record_lock(self.pair, "invoice", invoice_id):
            try:
                return self._write_deal(invoice, started)
            except BATCH_ERRORS:
                raise
            except RETRY_ERRORS as error:
                reason = f"{type(error).__name__}: {error}"
                logger.warning("Invoice %s not synced, to retry: %s", invoice_id, reason)
                outcome = retry_outcome(reason)
                self._audit(
                    invoice_id,
                    action="deferred",
                    started_at=started,
                    pipedrive_type="deal",
                    reason=outcome.reason,
                )
                return outcome
            except Exception as error:  # one bad invoice fails alone; the batch goes on
                if isinstance(error, ConnectorError):
                    reason = getattr(error, "message", None) or str(error)
                else:
                    reason = f"{type(error).__name__}: {error}"
                    logger.exception("Invoice %s not synced: %s", invoice_id, reason)
                if isinstance(error, ValidationFailed) and "stage" in reason.lower():
                    self.stages.forget()  # a stage deleted in Pipedrive meanwhile
                logger.info("Invoice %s not synced: %s", invoice_id, reason)
                self._audit(
                    invoice_id, action="failed", started_at=started, pipedrive_type="deal", reason=reason
                )
                return RecordOutcome("failed", reason)

    def _write_deal(self, invoice: dict, started) -> RecordOutcome:
        invoice_id = str(invoice["InvoiceID"])
        contact_id = str((invoice.get("Contact") or {}).get("ContactID") or "")
        if not contact_id:
            raise SyncProblem("The invoice has no contact (Contact.ContactID missing in Xero's answer).")
        link = get_link(self.pair, "invoice", invoice_id, "deal")
        existing = link if link and link.state == RecordLink.State.LINKED and link.pipedrive_id else None
        status = invoice.get("Status") or ""
        if existing is None and (status in CLOSED_WITHOUT_DEAL or not self.create_deals):
            reason = (
                f"Invoice is {status} and has no deal: none is created."
                if status in CLOSED_WITHOUT_DEAL
                else "Deal creation is off for this sync pair."
            )
            self._audit(
                invoice_id, action="skipped", started_at=started, pipedrive_type="deal", reason=reason
            )
            return RecordOutcome("ignored", reason, action="skipped")
        org_link = self._org_link(contact_id)
        if org_link is None and contact_id in self.contact_retries:
            why = self.contact_retries[contact_id]
            raise ServerError(f"The invoice's contact {contact_id} could not be synced yet: {why}")
        if org_link is None:
            why = self.contact_failures.get(contact_id) or "it has no organization in Pipedrive"
            raise SyncProblem(f"The invoice's contact {contact_id} could not be synced: {why}")
        stage = self.stages.stage_for(invoice)
        deal_open = stage.status not in CLOSED_DEAL_STATUSES
        context = self.context_for(contact_id, org_link.pipedrive_id, invoice, deal_open)
        mapped = map_deal(
            invoice, self.deal_rules, context, value_from=self.value_from, title_template=self.title_template
        )
        payload = {**mapped.payload, "org_id": linked_id(org_link.pipedrive_id), "stage_id": stage.stage_id}
        person_id = self._primary_person(contact_id)
        if person_id:
            payload["person_id"] = person_id
        if stage.status:
            payload["status"] = stage.status
        if stage.status == "lost" and stage.lost_reason:
            payload["lost_reason"] = stage.lost_reason
        digest = payload_hash(payload)
        existing_id = existing.pipedrive_id if existing else None
        if existing is None and link is not None and link.state == RecordLink.State.CREATING:
            existing_id = self.find_created_deal(invoice_id, linked_id(org_link.pipedrive_id), payload)
        row = link  # this link's row, read or made under the record's lock
        if existing_id is None:
            row = mark_creating(self.pair, "invoice", invoice_id, "deal", absent=link is None)
        write = write_record(
            self.pipedrive,
            "deal",
            payload,
            digest,
            existing_id=existing_id,
            last_hash=existing.payload_hash if existing else "",
        )
        if write.action != "unchanged":
            save_link(self.pair, "invoice", invoice_id, "deal", write.pipedrive_id, digest, link=row)
        self._audit(
            invoice_id,
            action=write.action,
            started_at=started,
            pipedrive_type="deal",
            pipedrive_id=write.pipedrive_id,
            payload=write.sent,
            fields_mapped=mapped.fields_mapped,
            rules=self.deal_rules,
        )
        return RecordOutcome("done", pipedrive_id=write.pipedrive_id, action=write.action)

    def find_created_deal(self, invoice_id: str, org_id: int, payload: dict) -> int | None:
        """The deal an earlier create whose answer was lost may have made: among the organization's
        deals (a listing, 10 tokens per 500; only in this rare case) not linked to another invoice,
        the one whose InvoiceID field (when a rule maps ``InvoiceID``) holds this invoice, else the
        newest with exactly this title."""
        fields = [r.pipedrive_field for r in self.deal_rules if r.source_path.strip() == "InvoiceID"]
        deals = [d for d in self.pipedrive.iter("deal", org_id=org_id) if d.get("id")]
        taken = set(
            RecordLink.objects.filter(
                pair=self.pair,
                pipedrive_type="deal",
                state=RecordLink.State.LINKED,
                pipedrive_id__in=[int(d["id"]) for d in deals],
            )
            .exclude(xero_type="invoice", xero_id=invoice_id)
            .values_list("pipedrive_id", flat=True)
        )
        free = sorted((d for d in deals if int(d["id"]) not in taken), key=lambda d: -int(d["id"]))
        for field in fields:
            for deal in free:
                value = (deal.get("custom_fields") or {}).get(field, deal.get(field))
                if value is not None and str(value).strip().lower() == invoice_id.lower():
                    logger.info("Invoice %s: found deal %s by its InvoiceID field", invoice_id, deal["id"])
                    return int(deal["id"])
        for deal in free:
            if deal.get("title") == payload.get("title"):
                logger.info("Invoice %s: found deal %s by its title", invoice_id, deal["id"])
                return int(deal["id"])
        return None

    def context_for(self, contact_id: str, org_id, invoice: dict, deal_open: bool) -> dict:
        """What deal rules read under "Connector": the invoice's Xero page and the credit figures."""
        figures = self.credit.context(contact_id, org_id)  # {} unless the contact was read in this run
        deal_value = _number(invoice.get(self.value_from))
        return deal_context(figures, invoice, deal_value=deal_value, deal_open=deal_open)

    # --- entry points ---------------------------------------------------------------------
    def sync_ids(
        self, ids: list[str], *, refresh_contacts: bool = True, on_outcome=None
    ) -> dict[str, RecordOutcome]:
        outcomes = Outcomes(on_outcome)  # each chunk's outcomes reported as the chunk ends
        wanted = []
        for invoice_id in dict.fromkeys(str(i).strip() for i in ids):
            if is_xero_id(invoice_id):
                wanted.append(invoice_id)
            else:
                outcomes[invoice_id] = self.ignored(invoice_id, "Not a Xero InvoiceID.")
        for chunk in chunks(wanted, BATCH_SIZE):
            invoices = self.xero.get_invoices(ids=chunk)
            synced = self.sync_batch(invoices, refresh_contacts=refresh_contacts)
            by_id = {invoice_id.lower(): outcome for invoice_id, outcome in synced.items()}
            for invoice_id in chunk:  # outcomes under the ids as asked (the drain looks them up so)
                outcome = by_id.get(invoice_id.lower())
                if outcome is None:
                    reason = "Xero has no such invoice (deleted or never existed in this organisation)."
                    outcome = self.ignored(invoice_id, reason)
                outcomes[invoice_id] = outcome
            if self.credit_applies and refresh_contacts and self.recheck_other_deals:
                done = {invoice_id.lower() for invoice_id in outcomes}
                self.reevaluate_open_deals(_contact_ids(invoices), done=done)
        return outcomes

    def ignored(self, invoice_id: str, reason: str) -> RecordOutcome:
        self._audit(invoice_id, action="skipped", started_at=timezone.now(), reason=reason)
        return RecordOutcome("ignored", reason, action="skipped")

    def reevaluate_open_deals(
        self, contact_ids: list[str], done: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """The over-credit flag of a contact's open deals depends on its credit: re-sync every invoice
        of these contacts in a status the stage table keeps open (DRAFT, SUBMITTED, AUTHORISED by
        default) that has a deal, except those in ``done``. One Xero read per 100 contacts; a deal
        whose payload (flag, figures) did not change costs no Pipedrive write."""
        contact_ids = list(dict.fromkeys(contact_ids))
        statuses = self.stages.open_statuses()
        if not contact_ids or not statuses:
            return
        for chunk in chunks(contact_ids, BATCH_SIZE):
            invoices = self.xero.get_invoices(contact_ids=chunk, statuses=statuses)
            others = [
                inv
                for inv in invoices
                if inv.get("Type") == SALES
                and str(inv["InvoiceID"]).lower() not in done
                and live_link(self.pair, "invoice", str(inv["InvoiceID"]), "deal")
            ]
            if others:
                self.credit.load(_contact_ids(others))
                # Each re-checked deal's record names the re-check and what it followed.
                with trigger_cause(SyncRecord.Trigger.CREDIT_RECHECK, credit.recheck_words(self.trigger)):
                    for invoice in others:
                        self.sync_one(invoice)


def _contact_ids(invoices: list[dict]) -> list[str]:
    """The ContactIDs of the sales invoices (an invoice without one is left out: it fails alone)."""
    ids = (
        str((inv.get("Contact") or {}).get("ContactID") or "") for inv in invoices if inv.get("Type") == SALES
    )
    return list(dict.fromkeys(i for i in ids if i))


def _number(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
    except (InvalidOperation, ValueError):
        return None


def primary_person_id(pair, contact_id: str) -> int | None:
    """The Pipedrive person made from the contact's primary person, when the contact sync linked one:
    its links are "<ContactID>:<person key>", the primary (mapped first) linked first."""
    link = live_link(pair, "contact", contact_id, "person")
    if link:
        return linked_id(link.pipedrive_id)
    first = (
        RecordLink.objects.filter(
            pair=pair,
            xero_type="contact_person",
            xero_id__startswith=f"{contact_id}:",
            pipedrive_type="person",
            state=RecordLink.State.LINKED,
            pipedrive_id__isnull=False,
        )
        .order_by("id")
        .first()
    )
    return linked_id(first.pipedrive_id) if first else None


def sync_invoices(
    pair, ids: list[str], *, trigger: str = "webhook", on_outcome=None
) -> dict[str, RecordOutcome]:
    """Sync these Xero invoices to deals as Xero has them now; ``{InvoiceID: RecordOutcome}``."""
    return InvoiceRun(pair, trigger).sync_ids(ids, on_outcome=on_outcome)


def refresh_open_deals(pair, contact_ids: list[str], *, trigger: str = "webhook") -> None:
    """After contacts' balances changed: re-read them (one Xero call per 100) and re-check the
    over-credit flag of their open deals. Nothing to do (and no call) when no credit limit can apply."""
    run = InvoiceRun(pair, trigger)
    if run.credit_applies:
        run.credit.load(contact_ids)
        run.reevaluate_open_deals(contact_ids)
