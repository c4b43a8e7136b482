"""The dry run: what a backfill would create, match (and by which rule) or find ambiguous, and its cost."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from connector.connections.services import pipedrive_client, xero_client
from connector.limits import budget, ratelimit
from connector.models import BackfillAmbiguity, BackfillRun, SyncPair
from connector.operations.backfill.matching import BackfillContactSync
from connector.operations.backfill.meter import CallMeter
from connector.operations.backfill.paging import (
    CREATE_TOKENS,
    UPDATE_TOKENS,
    fetch_page,
    is_last_page,
    page_size,
    resolutions_of,
    setting,
    xero_day_reserve,
)
from connector.options import pair_options
from connector.sync.common import get_link, live_link, was_creating
from connector.sync.contacts import ARCHIVED_STATUSES
from connector.sync.invoices import SALES, InvoiceRun, SyncProblem
from connector.sync.payments import SALES_PAYMENT
from mapping.choices import CLOSED_WITHOUT_DEAL
from mapping.engine import map_persons
from mapping.models import RecordLink

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


@dataclass
class Plan:
    """What the preview found; stored on the run as JSON."""

    totals: dict = field(default_factory=lambda: {"contacts": 0, "invoices": 0, "payments": 0})
    organizations: dict = field(
        default_factory=lambda: {"create": 0, "link": 0, "contact_id_field": 0, "name": 0, "ambiguous": 0}
    )
    persons: dict = field(default_factory=lambda: {"create": 0, "link": 0, "email": 0, "name": 0})
    deals: dict = field(default_factory=lambda: {"create": 0, "update": 0, "skip": 0, "fail": 0})
    notes: dict = field(default_factory=lambda: {"create": 0, "existing": 0, "skip": 0})
    problems: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Preview:
    """The dry run: every decision the run would take, nothing written to Pipedrive."""

    def __init__(self, run: BackfillRun):
        self.run = run
        self.pair = run.pair
        self.meter = CallMeter()
        self.xero = self.meter.watch_xero(xero_client(self.pair.xero_connection))
        self.pipedrive = self.meter.watch_pipedrive(pipedrive_client(self.pair.pipedrive_connection))
        self.claims: dict[tuple[str, int], str] = {}
        self.sync = BackfillContactSync(
            self.pair, resolutions=resolutions_of(run), claims=self.claims,
            xero=self.xero, pipedrive=self.pipedrive,
        )  # fmt: skip
        self.plan = Plan()
        self.contacts_with_org: set[str] = set()  # ContactIDs (lower) that will have an organization
        self.deals: dict[str, str] = {}  # InvoiceID (lower) -> "create"/"update" for invoices with a deal
        self.ambiguities: list[BackfillAmbiguity] = []

    def run_preview(self) -> dict:
        self.sync.index  # noqa: B018 (fill the local index of Pipedrive records first, by paging)
        self._pages("Contacts", self.contact)
        self.invoices = InvoiceRun(self.pair, "backfill")
        self.invoices._xero, self.invoices._pipedrive = self.xero, self.pipedrive
        self._pages("Invoices", self.invoice)
        self._pages("Payments", self.payment)
        plan = self.plan.as_dict()
        plan["estimate"] = estimate(self.pair, plan)
        plan["preview_cost"] = {
            "xero_calls": self.meter.xero_calls,
            "pipedrive_tokens": self.meter.pipedrive_tokens,
        }
        return plan

    def _pages(self, resource: str, handle) -> None:
        page = 1
        while True:
            rows, pagination = fetch_page(self.xero, self.run, resource, page)
            self.plan.totals[resource.lower()] += len(rows)
            for row in rows:
                handle(row)
            if is_last_page(rows, pagination, page):
                return
            page += 1

    # --- contacts ---------------------------------------------------------------------------
    def contact(self, contact: dict) -> None:
        contact_id = str(contact["ContactID"])
        sync, orgs = self.sync, self.plan.organizations
        link = live_link(self.pair, "contact", contact_id, "organization")
        if link or was_creating(self.pair, "contact", contact_id, "organization"):
            org_id = link.pipedrive_id if link else None
            orgs["link"] += 1
        else:
            org_id = sync.match_organization(contact, contact.get("Name") or "", [])
            free = sync.name_candidates.get(contact_id)
            if org_id is None:
                orgs["create"] += 1
            elif free is None:
                orgs["contact_id_field"] += 1
            else:
                orgs["name"] += 1
            if free and len(free) > 1:
                orgs["ambiguous"] += 1
                self.ambiguities.append(
                    BackfillAmbiguity(
                        run=self.run,
                        contact_id=contact_id,
                        contact_name=str(contact.get("Name") or "")[:255],
                        candidates=[{"id": c.record_id, "name": c.name} for c in free],
                    )
                )
            if org_id is not None:
                self.claims[("organization", int(org_id))] = contact_id
        self.contacts_with_org.add(contact_id.lower())
        status = str(contact.get("ContactStatus") or "ACTIVE").upper()
        if status in ARCHIVED_STATUSES and sync.archived_rule == "clear":
            return  # the run clears linked persons and makes no new ones
        for key, mapped in map_persons(contact, sync.person_rules, {"XeroUrl": None}):
            xero_id = f"{contact_id}:{key}"[:200]
            if live_link(self.pair, "contact_person", xero_id, "person"):
                self.plan.persons["link"] += 1
                continue
            payload = {**mapped.payload, "org_id": org_id}
            person_id = sync.match_person(xero_id, key, payload, org_id)
            if person_id is None:
                self.plan.persons["create"] += 1
            else:
                self.plan.persons["email" if "@" in key else "name"] += 1
                self.claims[("person", int(person_id))] = xero_id

    # --- invoices ---------------------------------------------------------------------------
    def invoice(self, invoice: dict) -> None:
        deals = self.plan.deals
        invoice_id = str(invoice.get("InvoiceID") or "")
        if invoice.get("Type") != SALES:
            deals["skip"] += 1
            return
        link = get_link(self.pair, "invoice", invoice_id, "deal")
        linked = link is not None and link.state == RecordLink.State.LINKED and link.pipedrive_id
        status = invoice.get("Status") or ""
        if not linked and (status in CLOSED_WITHOUT_DEAL or not self.invoices.create_deals):
            deals["skip"] += 1
            return
        contact_id = str((invoice.get("Contact") or {}).get("ContactID") or "").lower()
        if contact_id not in self.contacts_with_org:
            deals["fail"] += 1
            self._problem(f"Invoice {invoice.get('InvoiceNumber') or invoice_id}: its contact is not in Xero")
            return
        try:
            self.invoices.stages.stage_for(invoice)
        except SyncProblem as problem:
            deals["fail"] += 1
            self._problem(str(problem))
            return
        action = "update" if linked else "create"
        deals[action] += 1
        self.deals[invoice_id.lower()] = action

    # --- payments ---------------------------------------------------------------------------
    def payment(self, payment: dict) -> None:
        notes = self.plan.notes
        payment_id = str(payment.get("PaymentID") or "")
        invoice_id = str((payment.get("Invoice") or {}).get("InvoiceID") or "").lower()
        has_deal = invoice_id in self.deals or live_link(self.pair, "invoice", invoice_id, "deal")
        if payment.get("PaymentType", SALES_PAYMENT) != SALES_PAYMENT or not has_deal:
            notes["skip"] += 1
            return
        if not pair_options(self.pair).create_notes:
            notes["skip"] += 1
            return
        noted = get_link(self.pair, "payment", payment_id, "note")
        if payment.get("Status") == "DELETED":
            if noted is None:
                notes["skip"] += 1
            elif get_link(self.pair, "payment", payment_id + ":deleted", "note"):
                notes["existing"] += 1
            else:
                notes["create"] += 1
            return
        notes["existing" if noted and noted.state == RecordLink.State.LINKED else "create"] += 1

    def _problem(self, text: str) -> None:
        if len(self.plan.problems) < 20 and text not in self.plan.problems:
            self.plan.problems.append(text)


def estimate(pair: SyncPair, plan: dict) -> dict:
    """Xero calls, Pipedrive tokens and time of the run at the pair's current limits and budget."""
    size = page_size()
    pages = sum(max(1, math.ceil(plan["totals"][k] / size)) for k in ("contacts", "invoices", "payments"))
    xero_calls = pages + 3  # + the catch-up pass's first page of each kind
    orgs, persons, deals, notes = plan["organizations"], plan["persons"], plan["deals"], plan["notes"]
    creates = orgs["create"] + persons["create"] + deals["create"] + notes["create"]
    updates = orgs["link"] + orgs["contact_id_field"] + orgs["name"] + persons["link"] + persons["email"]
    updates += persons["name"] + deals["update"]
    tokens = (
        CREATE_TOKENS["organization"] * orgs["create"]
        + CREATE_TOKENS["person"] * persons["create"]
        + CREATE_TOKENS["deal"] * deals["create"]
        + CREATE_TOKENS["note"] * notes["create"]
        + UPDATE_TOKENS * updates  # at most: an unchanged record costs nothing
        + 10  # pipelines and stages, once
    )
    calls = creates + updates + 2
    xero_minute = int(setting("XERO_MINUTE_LIMIT", 60))
    burst = int(setting("PIPEDRIVE_BURST_LIMIT", 20)) / float(setting("PIPEDRIVE_BURST_SECONDS", 2))
    seconds_pipedrive = calls / burst
    seconds_xero = xero_calls / (xero_minute / 60.0)
    binding = "Pipedrive burst limit" if seconds_pipedrive >= seconds_xero else "Xero minute limit"
    seconds = max(seconds_pipedrive, seconds_xero)
    company = pair.pipedrive_connection.company_id
    tokens_left = ratelimit.PipedriveLimiter(str(company)).remaining("daily-tokens") - budget.reserve()
    daily_tokens = int(setting("PIPEDRIVE_DAILY_TOKENS", 30000)) - budget.reserve()
    days_waiting = 0
    if tokens > max(0, tokens_left):
        days_waiting = math.ceil((tokens - max(0, tokens_left)) / max(1, daily_tokens))
        binding = "Pipedrive daily budget"
    xero_left = ratelimit.XeroLimiter(pair.xero_connection.tenant_id).remaining("day") - xero_day_reserve()
    if xero_calls > max(0, xero_left):
        days_waiting = max(days_waiting, 1)
        binding = "Xero day limit"
    return {
        "xero_calls": xero_calls,
        "pipedrive_calls": calls,
        "pipedrive_tokens": tokens,
        "pipedrive_tokens_left_today": max(0, tokens_left),
        "seconds": round(seconds),
        "days_waiting_for_budget": days_waiting,
        "binding_limit": binding,
    }


# --- Starting, confirming, controlling ------------------------------------------------------
