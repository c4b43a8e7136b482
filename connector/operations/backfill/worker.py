"""The worker: pages through Contacts, Invoices, Payments and a catch-up pass, chunk by chunk, resumable."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connector.connections.services import pipedrive_client, xero_client
from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, RateLimited
from connector.intake.drain import pair_drain_lock
from connector.limits import budget, ratelimit
from connector.models import BackfillRun, DeferredJob, WebhookEvent
from connector.operations.backfill import control  # control.enqueue: one place to queue (and patch)
from connector.operations.backfill.control import RESUME_FUNC, describe_error, run_preview
from connector.operations.backfill.matching import BackfillContactSync
from connector.operations.backfill.meter import CallMeter
from connector.operations.backfill.paging import (
    CATEGORIES,
    PHASES,
    RESOURCES,
    TOKENS_PER_RECORD_CEILING,
    chunk_size,
    fetch_page,
    is_last_page,
    lease_seconds,
    resolutions_of,
    setting,
    slice_seconds,
    xero_day_reserve,
)
from connector.operations.reconciliation import reconcile_since
from connector.operations.window import received_since, record_id
from connector.sync.invoices import InvoiceRun
from connector.sync.payments import PaymentRun

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


class _Stop(Exception):
    """The run stops here (paused, cancelled, waiting for a reset, slice over); already saved."""


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
        max_wait = float(setting("BACKFILL_MAX_YIELD_SECONDS", 30))
        while waited < max_wait and inbox.exists():
            time.sleep(0.5)  # the drain is at work on live changes: let it finish first
            waited += 0.5
        if time.monotonic() > self.deadline:
            self.save(status=Status.QUEUED, state_message="Running (continuing in the next slice).")
            control.enqueue(self.run.pk)
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
            time.sleep(min(exc.retry_after, 60))
            self.save(status=Status.QUEUED, state_message="Waiting a moment for a rate limit.")
            control.enqueue(self.run.pk)
        except (ConnectionBroken, AuthExpired) as exc:
            self.save(
                status=Status.PAUSED,
                last_error=str(exc)[:2000],
                state_message=f"Paused: {describe_error(exc)}.",
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
            if is_last_page(rows, pagination, self.run.page):
                return
            self.save(page=self.run.page + 1, position=0)

    def records(
        self, phase: str, resource: str, rows: list[dict], fetched_at, start: int | None = None
    ) -> None:
        start = self.run.position if start is None else start

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
