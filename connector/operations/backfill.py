"""Backfill: bring a Xero organisation's existing contacts, invoices and payments across to Pipedrive.

A run (``BackfillRun``) is previewed first: a dry run pages through Xero and decides, with the very
matching code the real run uses (``BackfillContactSync``), what would be created, matched (and by
which rule) or is ambiguous, and estimates the Xero calls, Pipedrive tokens and time. Once confirmed,
the run pages through Contacts, then sales Invoices (optionally dated since a day), then Payments,
1,000 records per Xero call, ordered by record id so a record changed meanwhile keeps its place, and
feeds each page to the same sync services the webhooks use (trigger "backfill": same links, matching
and audit rows). A last pass syncs what changed in Xero while the backfill ran.

Safety: where the run stands (phase, page, position) is saved after every chunk of records, so a
killed worker's run is resumed there by the upkeep schedule; a unique constraint allows one active
run per pair; each chunk is synced under the pair's drain lock and skips records a webhook brought in
after the page was fetched (the webhook's sync is newer), and the run waits while the pair's inbox has
work, so live changes keep priority. Limits: Xero's minute limit and Pipedrive's burst are waited
for by the clients; before each chunk the run checks Xero's day limit and Pipedrive's daily budget
(keeping the reserve for live work) and, when either would run out, waits for the reset as a
``DeferredJob`` and says so on the run (``status`` "waiting", ``resume_at``, ``state_message``).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connector.connections.services import pipedrive_client, xero_client
from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, ConnectorError, RateLimited
from connector.limits import budget, ratelimit
from connector.models import BackfillAmbiguity, BackfillRun, DeferredJob, SyncPair, WebhookEvent
from connector.operations.window import received_since, record_id
from connector.options import pair_options
from connector.sync.common import get_link, live_link, was_creating
from connector.sync.contacts import ARCHIVED_STATUSES, ContactSync
from connector.sync.invoices import SALES, InvoiceRun, SyncProblem
from connector.sync.payments import SALES_PAYMENT, PaymentRun
from mapping.choices import CLOSED_WITHOUT_DEAL
from mapping.engine import map_persons
from mapping.models import RecordLink

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase
PHASES = [Phase.CONTACTS, Phase.INVOICES, Phase.PAYMENTS, Phase.CATCH_UP]
RESOURCES = {Phase.CONTACTS: "Contacts", Phase.INVOICES: "Invoices", Phase.PAYMENTS: "Payments"}
ORDER = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID"}
CATEGORIES = {"Contacts": "CONTACT", "Invoices": "INVOICE", "Payments": "PAYMENT"}
# Pipedrive tokens of each write (v2 create/update 5, v1 note 10) and of listing 500 records.
CREATE_TOKENS = {"organization": 5, "person": 5, "deal": 5, "note": 10}
UPDATE_TOKENS = 5
TOKENS_PER_RECORD_CEILING = 11  # a contact with one person: 2 creates and its share of the listing


def _setting(name: str, default):
    return getattr(settings, name, default)


def page_size() -> int:
    return max(1, min(1000, int(_setting("BACKFILL_PAGE_SIZE", 1000))))


def chunk_size() -> int:
    return max(1, int(_setting("BACKFILL_CHUNK", 25)))


def lease_seconds() -> float:
    return float(_setting("BACKFILL_LEASE_SECONDS", 120))


def slice_seconds() -> float:
    """A worker gives the run back (and queues its continuation) after this long: django-q kills
    tasks after Q_TIMEOUT, and other work gets a turn."""
    return float(_setting("BACKFILL_SLICE_SECONDS", 240))


def xero_day_reserve() -> int:
    """Xero calls a day kept for live (webhook) work: the backfill waits for the reset below this."""
    return int(_setting("BACKFILL_XERO_DAY_RESERVE", 100))


class BackfillError(ConnectorError):
    """The request cannot be carried out as things stand; the message says why, in finance's words."""


# --- Counting what a run spends --------------------------------------------------------------


@dataclass
class CallMeter:
    """Counts the calls (and Pipedrive tokens, and records created by kind) of the clients it watches."""

    xero_calls: int = 0
    pipedrive_calls: int = 0
    pipedrive_tokens: int = 0
    created: dict = field(default_factory=dict)

    def watch_xero(self, client):
        original = client.request

        def request(method, path, **kwargs):
            self.xero_calls += 1
            return original(method, path, **kwargs)

        client.request = request
        return client

    def watch_pipedrive(self, client):
        original = client.request

        def request(method, path, **kwargs):
            self.pipedrive_calls += 1
            self.pipedrive_tokens += int(kwargs.get("units", 1))
            result = original(method, path, **kwargs)
            if method == "POST":
                kind = {"organizations": "organization", "persons": "person", "deals": "deal"}.get(
                    path.rstrip("/").rsplit("/", 1)[-1], "note" if path.endswith("/notes") else ""
                )
                if kind:
                    self.created[kind] = self.created.get(kind, 0) + 1
            return result

        client.request = request
        return client

    def drain_into(self, run: BackfillRun) -> None:
        """Add what was counted since the last call to the run (saved by the caller)."""
        run.xero_calls += self.xero_calls
        run.pipedrive_calls += self.pipedrive_calls
        run.pipedrive_tokens += self.pipedrive_tokens
        created = dict(run.created_records or {})
        for kind, number in self.created.items():
            created[kind] = created.get(kind, 0) + number
        run.created_records = created
        self.xero_calls = self.pipedrive_calls = self.pipedrive_tokens = 0
        self.created = {}


# --- Matching: the contacts sync with the preview's choices --------------------------------


class BackfillContactSync(ContactSync):
    """The contacts sync, plus the admin's answers to the preview's ambiguous matches.

    The preview and the run both match through this class, so the preview's counts are the run's.
    ``resolutions``: {ContactID (lower case): organization id as text, or "new"}. ``claims`` (preview
    only): the Pipedrive records the preview has already given to a Xero record, standing in for the
    links the run will have saved by then.
    """

    def __init__(self, pair, *, resolutions=None, claims=None, **kwargs):
        super().__init__(pair, trigger="backfill", **kwargs)
        self.resolutions = resolutions or {}
        self.claims = claims
        self.name_candidates: dict[str, list] = {}  # ContactID -> the free candidates by name

    def _linked_elsewhere(self, pipedrive_type, pipedrive_ids, xero_type, xero_id):
        taken = super()._linked_elsewhere(pipedrive_type, pipedrive_ids, xero_type, xero_id)
        if self.claims is not None:
            for record_id in pipedrive_ids:
                owner = self.claims.get((pipedrive_type, int(record_id)))
                if owner is not None and owner != xero_id:
                    taken.add(int(record_id))
        return taken

    def _pick_by_name(self, contact_id, candidates, notes):
        taken = self._linked_elsewhere(
            "organization", [c.record_id for c in candidates], "contact", contact_id
        )
        free = [
            c
            for c in candidates
            if c.record_id not in taken and (not c.xero_contact_id or c.xero_contact_id == contact_id.lower())
        ]
        self.name_candidates[contact_id] = free
        choice = self.resolutions.get(contact_id.lower(), "")
        if choice == "new":
            notes.append("a new organization, as chosen in the backfill preview")
            return None
        if choice.isdigit() and int(choice) in {c.record_id for c in free}:
            notes.append(
                f"matched organization {choice} by normalized name, as chosen in the backfill preview"
            )
            return int(choice)
        return super()._pick_by_name(contact_id, candidates, notes)


def resolutions_of(run: BackfillRun) -> dict[str, str]:
    return {
        a.contact_id.lower(): a.choice
        for a in run.ambiguities.exclude(choice="").only("contact_id", "choice")
    }


# --- Paging -------------------------------------------------------------------------------------


def _where(run: BackfillRun, resource: str) -> str | None:
    parts = []
    if resource == "Invoices":
        parts.append(f'Type=="{SALES}"')
    if resource == "Payments":
        parts.append(f'PaymentType=="{SALES_PAYMENT}"')
    if run.since and resource in ("Invoices", "Payments"):
        day = run.since
        parts.append(f"Date>=DateTime({day.year},{day.month:02d},{day.day:02d})")
    return " && ".join(parts) or None


def fetch_page(xero, run: BackfillRun, resource: str, page: int, modified_since=None):
    return xero.get_page(
        resource,
        page,
        page_size(),
        order=ORDER[resource],
        where=_where(run, resource),
        modified_since=modified_since,
        include_archived=resource == "Contacts",
    )


def _last_page(rows: list, pagination: dict, page: int) -> bool:
    if pagination.get("pageCount") is not None:
        return page >= int(pagination["pageCount"])
    return len(rows) < page_size()


# --- The preview (dry run) ------------------------------------------------------------------


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
            if _last_page(rows, pagination, page):
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
            org_id = sync._match_organization(contact, contact.get("Name") or "", [])
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
            person_id = sync._match_person(xero_id, key, payload, org_id)
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
    xero_minute = int(_setting("XERO_MINUTE_LIMIT", 60))
    burst = int(_setting("PIPEDRIVE_BURST_LIMIT", 20)) / float(_setting("PIPEDRIVE_BURST_SECONDS", 2))
    seconds_pipedrive = calls / burst
    seconds_xero = xero_calls / (xero_minute / 60.0)
    binding = "Pipedrive burst limit" if seconds_pipedrive >= seconds_xero else "Xero minute limit"
    seconds = max(seconds_pipedrive, seconds_xero)
    company = pair.pipedrive_connection.company_id
    tokens_left = ratelimit.PipedriveLimiter(company).remaining("daily-tokens") - budget.reserve()
    daily_tokens = int(_setting("PIPEDRIVE_DAILY_TOKENS", 30000)) - budget.reserve()
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


def active_run(pair) -> BackfillRun | None:
    return BackfillRun.objects.filter(pair=pair, status__in=BackfillRun.ACTIVE).first()


def start_preview(pair: SyncPair, *, since: dt.date | None = None, requested_by: str = "") -> BackfillRun:
    """A new run for the pair, in preview; refused while another is active (the database says so)."""
    if not pair.enabled:
        raise BackfillError(f"The sync pair {pair} is disabled: enable it before a backfill.")
    if since and since > timezone.now().date():
        raise BackfillError("The start date is in the future: choose today or an earlier date.")
    try:
        with transaction.atomic():
            return BackfillRun.objects.create(pair=pair, since=since, requested_by=requested_by[:150])
    except IntegrityError:
        raise BackfillError(
            f"A backfill of {pair} is already under way: open it to follow, pause or cancel it."
        ) from None


def run_preview(run_id: int) -> BackfillRun:
    """The dry run of a run in preview; stores the plan and the ambiguous matches."""
    run = BackfillRun.objects.get(pk=run_id)
    if run.status != Status.PREVIEWING:
        return run
    preview = Preview(run)
    try:
        plan = preview.run_preview()
    except (BudgetExhausted, RateLimited, ConnectionBroken, AuthExpired, ConnectorError) as exc:
        run.status = Status.FAILED
        run.finished_at = timezone.now()
        run.last_error = run.state_message = f"The preview could not be made: {_describe(exc)}"
        run.save()
        return run
    with transaction.atomic():
        run.ambiguities.all().delete()
        BackfillAmbiguity.objects.bulk_create(preview.ambiguities, batch_size=500)
        run.plan = plan
        run.counts = {
            Phase.CONTACTS: {"total": plan["totals"]["contacts"], "done": 0},
            Phase.INVOICES: {"total": plan["totals"]["invoices"], "done": 0},
            Phase.PAYMENTS: {"total": plan["totals"]["payments"], "done": 0},
        }
        preview.meter.drain_into(run)
        run.status = Status.PREVIEWED
        run.state_message = "Preview ready: check the figures and confirm to start."
        run.save()
    return run


def resolve(run: BackfillRun, contact_id: str, choice: str) -> None:
    """The admin's answer to one ambiguous match: an organization id among the candidates, or "new"."""
    row = run.ambiguities.filter(contact_id=contact_id).first()
    if row is None:
        raise BackfillError("That contact has no open question in this backfill.")
    allowed = {str(c["id"]) for c in row.candidates} | {"new", ""}
    if str(choice) not in allowed:
        raise BackfillError(f"{choice} is not one of the organizations found for {row.contact_name}.")
    row.choice = str(choice)
    row.save(update_fields=["choice"])


def confirm(run: BackfillRun) -> BackfillRun:
    """Start the previewed run (queued for a worker)."""
    updated = BackfillRun.objects.filter(pk=run.pk, status=Status.PREVIEWED).update(
        status=Status.QUEUED, state_message="Queued: a worker starts it shortly.", updated_at=timezone.now()
    )
    if not updated:
        raise BackfillError("Only a previewed backfill can be started.")
    enqueue(run.pk)
    return BackfillRun.objects.get(pk=run.pk)


def pause(run: BackfillRun) -> None:
    pausable = [Status.QUEUED, Status.RUNNING, Status.WAITING]
    if not BackfillRun.objects.filter(pk=run.pk, status__in=pausable).update(
        status=Status.PAUSED, state_message="Paused by an admin: resume to carry on where it stopped.",
        updated_at=timezone.now(),
    ):  # fmt: skip
        raise BackfillError("Only a queued, running or waiting backfill can be paused.")
    _drop_resume_jobs(run.pk)


def resume(run: BackfillRun) -> None:
    if not BackfillRun.objects.filter(pk=run.pk, status__in=[Status.PAUSED, Status.WAITING]).update(
        status=Status.QUEUED, resume_at=None, worker="", state_message="Queued: a worker resumes it shortly.",
        updated_at=timezone.now(),
    ):  # fmt: skip
        raise BackfillError("Only a paused or waiting backfill can be resumed.")
    enqueue(run.pk)


def cancel(run: BackfillRun) -> None:
    if not BackfillRun.objects.filter(pk=run.pk, status__in=BackfillRun.ACTIVE).update(
        status=Status.CANCELLED, finished_at=timezone.now(), worker="",
        state_message="Cancelled by an admin. What was already synced stays in Pipedrive.",
        updated_at=timezone.now(),
    ):  # fmt: skip
        raise BackfillError("This backfill has already ended.")
    _drop_resume_jobs(run.pk)


RESUME_FUNC = "connector.operations.backfill.resume_after_reset"


def _drop_resume_jobs(run_id: int) -> None:
    """The run no longer waits for a reset (paused or cancelled): its DeferredJob goes."""
    jobs = DeferredJob.objects.filter(func=RESUME_FUNC, status=DeferredJob.Status.WAITING)
    DeferredJob.objects.filter(pk__in=[j.pk for j in jobs if list(j.args) == [run_id]]).delete()


def resume_after_reset(run_id: int) -> None:
    """A DeferredJob calls this once the spent daily limit has reset."""
    updated = BackfillRun.objects.filter(pk=run_id, status=Status.WAITING).update(
        status=Status.QUEUED, resume_at=None, worker="", state_message="The limit has reset: resuming.",
        updated_at=timezone.now(),
    )  # fmt: skip
    if updated:
        enqueue(run_id)


def enqueue(run_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("connector.tasks.run_backfill", run_id, group="backfill"))


def resume_stalled_runs() -> list[int]:
    """Runs a killed worker left (running, heartbeat older than the lease) or whose task message was
    lost (queued for longer than the lease), and waiting runs past their reset: queued again."""
    stale = timezone.now() - dt.timedelta(seconds=lease_seconds())
    ids = list(
        BackfillRun.objects.filter(
            Q(status__in=[Status.RUNNING, Status.QUEUED], heartbeat_at__lt=stale)
            | Q(status=Status.QUEUED, heartbeat_at=None, updated_at__lt=stale)
            | Q(status=Status.WAITING, resume_at__lte=ratelimit.now_dt())
        ).values_list("pk", flat=True)
    )
    for run_id in ids:
        BackfillRun.objects.filter(pk=run_id).update(status=Status.QUEUED, heartbeat_at=timezone.now())
        enqueue(run_id)
    return ids


# --- The run -----------------------------------------------------------------------------------


class _Stop(Exception):
    """The run stops here (paused, cancelled, waiting for a reset, slice over); already saved."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, BudgetExhausted):
        return f"a daily limit is spent until {exc.resets_at:%Y-%m-%d %H:%M} UTC ({exc})"
    if isinstance(exc, ConnectionBroken | AuthExpired):
        return f"a connection needs attention ({exc}); reconnect it, then resume"
    return str(exc) or type(exc).__name__


class BackfillWorker:
    """Carries one run forward from where it stands, for one slice of time."""

    def __init__(self, run: BackfillRun, token: str):
        self.run = run
        self.token = token
        self.pair = run.pair
        self.meter = CallMeter()
        self.xero = self.meter.watch_xero(xero_client(self.pair.xero_connection))
        self.pipedrive = self.meter.watch_pipedrive(pipedrive_client(self.pair.pipedrive_connection))
        self.contacts = BackfillContactSync(
            self.pair, resolutions=resolutions_of(run), xero=self.xero, pipedrive=self.pipedrive
        )
        self.deadline = time.monotonic() + slice_seconds()
        self.last_save = time.monotonic()

    # --- bookkeeping ----------------------------------------------------------------------------
    def save(self, **fields) -> None:
        """Save progress, counts and spend; raise _Stop when an admin paused or cancelled meanwhile."""
        now = time.monotonic()
        self.run.active_seconds += now - self.last_save
        self.last_save = now
        self.meter.drain_into(self.run)
        for name, value in fields.items():
            setattr(self.run, name, value)
        values = {
            name: getattr(self.run, name)
            for name in (
                "phase",
                "page",
                "position",
                "counts",
                "xero_calls",
                "pipedrive_calls",
                "pipedrive_tokens",
                "created_records",
                "errors",
                "last_error",
                "active_seconds",
                "status",
                "state_message",
                "resume_at",
                "finished_at",
            )
        }
        values["heartbeat_at"] = values["updated_at"] = timezone.now()
        if not BackfillRun.objects.filter(pk=self.run.pk, worker=self.token, status=Status.RUNNING).update(
            **values
        ):
            raise _Stop("paused, cancelled or taken over")

    def count(self, phase: str, outcome_action: str, status: str = "done") -> None:
        counts = self.run.counts.setdefault(phase, {"total": 0, "done": 0})
        counts["done"] = counts.get("done", 0) + 1
        key = status if status in ("failed", "retry") else (outcome_action or status)
        counts[key] = counts.get(key, 0) + 1
        if status in ("failed", "retry"):
            self.run.errors += 1

    def wait_for_reset(self, exc: BudgetExhausted) -> None:
        """Pause until a spent daily limit resets: a DeferredJob resumes the run; the run says so."""
        message = f"Waiting for the daily limit to reset at {exc.resets_at:%Y-%m-%d %H:%M} UTC: {exc}"
        with transaction.atomic():
            self.save(status=Status.WAITING, resume_at=exc.resets_at, state_message=message)
            DeferredJob.objects.create(
                service="xero" if "Xero" in str(exc) else "pipedrive",
                scope=str(self.pair.pipedrive_connection.company_id),
                job_name=f"Backfill of {self.pair}",
                func=RESUME_FUNC,
                args=[self.run.pk],
                run_after=exc.resets_at,
                message=message,
            )
        logger.warning("Backfill %s of %s: %s", self.run.pk, self.pair, message)
        raise _Stop(message)

    def before_chunk(self, records: int, xero_calls: int = 0) -> None:
        """Live work first, then the daily limits (with their reserves), then the time slice."""
        waited = 0.0
        inbox = WebhookEvent.objects.filter(
            pair=self.pair, status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSING]
        )
        max_wait = float(_setting("BACKFILL_MAX_YIELD_SECONDS", 30))
        while waited < max_wait and inbox.exists():
            time.sleep(0.5)  # the drain is at work on live changes: let it finish first
            waited += 0.5
        if time.monotonic() > self.deadline:
            self.save(status=Status.QUEUED, state_message="Running (continuing in the next slice).")
            enqueue(self.run.pk)
            raise _Stop("slice over")
        xero = ratelimit.XeroLimiter(self.pair.xero_connection.tenant_id)
        if xero_calls and xero.remaining("day") < xero_calls + xero_day_reserve():
            window = next(w for w in xero.windows(1) if w.kind == "day")
            self.wait_for_reset(
                BudgetExhausted(xero.resets_at(window), "Xero day limit nearly spent (kept for live changes)")
            )
        try:
            budget.check_budget(
                self.pair.pipedrive_connection.company_id, records * TOKENS_PER_RECORD_CEILING, urgent=False
            )
        except BudgetExhausted as exc:
            self.wait_for_reset(exc)

    # --- phases ---------------------------------------------------------------------------------
    def go(self) -> None:
        try:
            self._go()
        except _Stop:
            return

    def _go(self) -> None:
        try:
            self.contacts.index  # noqa: B018 (fill the index before holding any lock)
            while self.run.phase != Phase.FINISHED:
                phase = self.run.phase
                if phase == Phase.CATCH_UP:
                    self.catch_up()
                    self.save(phase=Phase.FINISHED, page=1, position=0)
                else:
                    self.pages(phase)
                    following = PHASES[PHASES.index(phase) + 1]
                    self.save(phase=following, page=1, position=0)
            self.save(
                status=Status.DONE,
                finished_at=timezone.now(),
                state_message="Finished: every record is in Pipedrive; webhooks and reconciliation keep "
                "it so.",
            )
        except BudgetExhausted as exc:
            self.wait_for_reset(exc)
        except RateLimited as exc:
            # A minute or burst limit that outlasted the client's wait: carry on in a moment.
            ratelimit.sleep(min(exc.retry_after, 60))
            self.save(status=Status.QUEUED, state_message="Waiting a moment for a rate limit.")
            enqueue(self.run.pk)
        except (ConnectionBroken, AuthExpired) as exc:
            self.save(
                status=Status.PAUSED, last_error=str(exc)[:2000], state_message=f"Paused: {_describe(exc)}."
            )

    def pages(self, phase: str) -> None:
        resource = RESOURCES[phase]
        while True:
            self.before_chunk(0, xero_calls=2)
            rows, pagination = fetch_page(self.xero, self.run, resource, self.run.page)
            fetched_at = timezone.now()
            counts = self.run.counts.setdefault(phase, {"total": 0, "done": 0})
            if pagination.get("itemCount") is not None:
                counts["total"] = int(pagination["itemCount"])
            self.records(phase, resource, rows, fetched_at)
            if _last_page(rows, pagination, self.run.page):
                return
            self.save(page=self.run.page + 1, position=0)

    def records(
        self, phase: str, resource: str, rows: list[dict], fetched_at, start: int | None = None
    ) -> None:
        start = self.run.position if start is None else start
        from connector.intake.drain import pair_drain_lock

        while start < len(rows):
            chunk = rows[start : start + chunk_size()]
            self.before_chunk(len(chunk), xero_calls=2)
            before = (copy.deepcopy(self.run.counts), self.run.errors)
            try:
                with pair_drain_lock(self.pair.pk):
                    newer = received_since(self.pair, CATEGORIES[resource], chunk, fetched_at)
                    for record in chunk:
                        if record_id(record).lower() in newer:
                            self.count(phase, "left to the webhook")
                    self.sync(phase, [r for r in chunk if record_id(r).lower() not in newer])
            except BaseException:
                self.run.counts, self.run.errors = before  # the chunk is done again on resume
                raise
            start += len(chunk)
            self.save(position=start)

    def sync(self, phase: str, records: list[dict]) -> None:
        """Feed already-fetched records to the sync services (the same ones webhooks use)."""
        if not records:
            return
        if phase == Phase.CONTACTS:
            outcomes = [(r, self.contacts.sync_one(r)) for r in records]
        elif phase == Phase.INVOICES:
            synced = self._invoice_run().sync_batch(records, refresh_contacts=False)
            outcomes = [(r, synced[str(r["InvoiceID"])]) for r in records]
        else:
            payments = PaymentRun(self.pair, "backfill")
            payments.invoices = self._invoice_run()
            outcomes = [(r, payments.sync_one(r, None)) for r in records]
        for record, outcome in outcomes:
            self.count(phase, outcome.action, outcome.status)
            if outcome.status in ("failed", "retry"):
                self.run.last_error = f"{record_id(record)}: {outcome.reason}"[:2000]

    def _invoice_run(self) -> InvoiceRun:
        if getattr(self, "_invoices", None) is None:
            self._invoices = InvoiceRun(self.pair, "backfill")
            self._invoices._xero, self._invoices._pipedrive = self.xero, self.pipedrive
            self._invoices.prefetch_contact_links = True  # chunks are synced under the drain lock
        return self._invoices

    def catch_up(self) -> None:
        """What changed in Xero while the backfill ran (a webhook may have been missed meanwhile)."""
        from connector.operations.reconciliation import reconcile_since

        since = (self.run.started_at or timezone.now()) - dt.timedelta(minutes=5)
        reconcile_since(self.pair, since, trigger="backfill", xero=self.xero, pipedrive=self.pipedrive)


def run_backfill(run_id: int) -> str:
    """The task: preview a run in preview, or carry a queued (or abandoned) run forward."""
    run = BackfillRun.objects.select_related("pair").filter(pk=run_id).first()
    if run is None:
        return "gone"
    if run.status == Status.PREVIEWING:
        return run_preview(run_id).status
    token = uuid.uuid4().hex
    stale = timezone.now() - dt.timedelta(seconds=lease_seconds())
    claimed = BackfillRun.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=stale), pk=run_id
    ).update(status=Status.RUNNING, worker=token, heartbeat_at=timezone.now(), state_message="Running.")
    if not claimed:
        return run.status  # paused, cancelled, finished, or another worker holds it
    run.refresh_from_db()
    if run.started_at is None:
        run.started_at = timezone.now()
        BackfillRun.objects.filter(pk=run_id).update(started_at=run.started_at)
    BackfillWorker(run, token).go()
    return BackfillRun.objects.get(pk=run_id).status


# --- Progress, for the admin and the command ---------------------------------------------------


def progress(run: BackfillRun) -> dict:
    """Phase, done of total, rate, spend, ETA and errors, in one dict (the admin page and the command)."""
    counts = run.counts or {}
    total = sum(int((counts.get(p) or {}).get("total", 0)) for p in RESOURCES)
    done = 0
    for phase in RESOURCES:
        figures = counts.get(phase) or {}
        done += min(int(figures.get("done", 0)), int(figures.get("total", 0)) or int(figures.get("done", 0)))
    minutes = run.active_seconds / 60.0
    rate = done / minutes if minutes > 0 else 0.0
    eta = (total - done) / rate * 60 if rate > 0 and total > done else None
    return {
        "status": run.status,
        "status_label": run.get_status_display(),
        "phase": run.get_phase_display(),
        "done": done,
        "total": total,
        "percent": round(100.0 * done / total, 1) if total else 0.0,
        "per_phase": {p: counts.get(p, {}) for p in RESOURCES},
        "rate_per_minute": round(rate, 1),
        "eta_seconds": round(eta) if eta is not None else None,
        "xero_calls": run.xero_calls,
        "pipedrive_calls": run.pipedrive_calls,
        "pipedrive_tokens": run.pipedrive_tokens,
        "created": run.created_records or {},
        "errors": run.errors,
        "last_error": run.last_error,
        "message": run.state_message,
        "resume_at": run.resume_at.isoformat() if run.resume_at else None,
    }


def pair_backfill_state(pair) -> dict | None:
    """For the health page: the pair's active (or latest) backfill and whether it waits, and why."""
    run = active_run(pair) or BackfillRun.objects.filter(pair=pair).first()
    if run is None:
        return None
    return {"run_id": run.pk, **progress(run)}
