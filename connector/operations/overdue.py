"""The daily overdue pass: what sales see stays true as due dates pass, with no change in Xero.

An invoice becomes overdue when its due date passes, and Xero sends no webhook for that, and
reconciliation (records *modified* since) does not see it either. Once a day per pair, at or after the
pair's option ``overdue_check_at`` (HH:MM in the Xero organisation's time zone, ``connector.clock``),
this pass:

1. picks from the connector's own ledger (``KnownInvoice``, no Xero scan) the open sales invoices
   (AUTHORISED, amount due > 0) whose due date is before the organisation's today and whose due date
   was not handled yet (``rolled_over_due_on``);
2. re-syncs them with the normal invoice sync (``InvoiceRun.sync_ids``: ``GET /Invoices?IDs=``,
   100 a call, and their contacts ``GET /Contacts?IDs=``, 100 a call; the credit re-check of the
   contacts' other deals is left out, as a passing due date changes no balance), so the organization's
   outstanding/overdue
   figures, the deal's stage (the stage table's Overdue rule) and the credit flags follow; every record
   is audited with the trigger "overdue check (due date passed)";
3. with the option ``overdue_reminders``, gives each deal owner one activity per overdue invoice
   (``connector.sync.reminders``).

Budget-aware like reconciliation: with the Pipedrive budget low the pass does not start, records why
and the schedule tries again (every 15 minutes) until it can. A second pass the same local day
does nothing: the schedule skips a pair whose ``last_pass_on`` is today, and even a manual run finds
no invoice left to handle (it reads nothing and writes nothing).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django_q.models import Schedule
from django_q.tasks import async_task

from audit.services import trigger_cause
from connector import clock
from connector.connections.services import pipedrive_client
from connector.errors import BudgetExhausted, ConnectorError
from connector.intake.drain import pair_drain_lock
from connector.limits import budget
from connector.models import BackfillRun, KnownInvoice, OverduePassState, OverdueReminder, SyncPair
from connector.options import clock_time, pair_options
from connector.sync import reminders
from connector.sync.invoices import BATCH_SIZE, InvoiceRun, chunks

logger = logging.getLogger(__name__)

TRIGGER = "overdue"
TRIGGER_TEXT = "overdue check (due date passed)"
SCHEDULE_NAME = "connector: daily overdue checks"
SCHEDULE_MINUTES = 15


def ensure_schedule() -> Schedule:
    """The one schedule that looks at every pair every 15 minutes (idempotent)."""
    schedule, _ = Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "connector.operations.tasks.run_overdue_checks",
            "schedule_type": Schedule.MINUTES,
            "minutes": SCHEDULE_MINUTES,
            "repeats": -1,
        },
    )
    return schedule


def pass_due(pair: SyncPair) -> bool:
    """Is the pair's daily pass due: not yet done on the organisation's today, and past its set time?"""
    local = clock.local_now(pair.xero_connection)
    state = OverduePassState.objects.filter(pair=pair).first()
    if state is not None and state.last_pass_on == local.date():
        return False
    return local.time() >= clock_time(pair_options(pair).overdue_check_at)


def run_due_passes() -> dict:
    """The schedule's task: start the pass of every enabled pair whose daily pass is due."""
    ran: dict[str, dict] = {}
    for pair in SyncPair.objects.filter(enabled=True).select_related("xero_connection"):
        if pass_due(pair):
            ran[str(pair.pk)] = overdue_pass(pair.pk)
    return ran


def due_invoices(pair: SyncPair, today):
    """The open sales invoices whose due date is before ``today`` and not handled yet (ledger rows)."""
    return (
        KnownInvoice.objects.filter(
            pair=pair, status="AUTHORISED", amount_due__gt=0, due_on__lt=today, due_on__isnull=False
        )
        .exclude(rolled_over_due_on=F("due_on"))
        .order_by("due_on", "invoice_id")
    )


def queue_check(pair_id: int, *, requested_by: str) -> None:
    """A check started by hand: one pass of the pair on a worker, once the request's transaction commits."""
    transaction.on_commit(
        lambda: async_task(
            "connector.operations.tasks.run_overdue_check",
            pair_id,
            requested_by,
            task_name=f"overdue check of pair {pair_id}",
        )
    )


def overdue_pass(pair_id: int, *, requested_by: str = "") -> dict:
    """One overdue pass of the pair (the schedule's, a manual run or a deferred job); returns what it did."""
    pair = (
        SyncPair.objects.select_related("xero_connection", "pipedrive_connection").filter(pk=pair_id).first()
    )
    if pair is None or not pair.enabled:
        return {"skipped": "no such enabled pair"}
    if BackfillRun.objects.filter(pair=pair, status=BackfillRun.Status.RUNNING).exists():
        return {"skipped": "a backfill is running; the next check picks these invoices up"}
    state, _ = OverduePassState.objects.get_or_create(pair=pair)
    started = clock.now()
    today = clock.local_today(pair.xero_connection)
    try:
        counts = roll_over(pair, today)
    except BudgetExhausted as exc:
        message = f"Waiting for the Pipedrive budget or Xero day limit to reset ({exc}); checked again later."
        OverduePassState.objects.filter(pk=state.pk).update(last_run_at=started, last_error=message)
        return {"deferred": message}
    except ConnectorError as exc:
        OverduePassState.objects.filter(pk=state.pk).update(last_run_at=started, last_error=str(exc)[:2000])
        logger.warning("Overdue check of %s stopped: %s", pair, exc)
        return {"error": str(exc)}
    if requested_by:
        counts["requested_by"] = requested_by
    done = not counts.get("retry")  # transient failures: the schedule tries those again today
    OverduePassState.objects.filter(pk=state.pk).update(
        last_pass_on=today if done else state.last_pass_on,
        last_run_at=started,
        last_counts=counts,
        last_error="",
    )
    return counts


def roll_over(pair: SyncPair, today) -> dict:
    """Re-sync the invoices that fell due, then remind the owners (see the module's docstring)."""
    options = pair_options(pair)
    counts: dict = {"today": today.isoformat(), "due": 0}
    client = None

    def pipedrive():
        nonlocal client
        if client is None:
            client = pipedrive_client(pair.pipedrive_connection)
        return client

    with pair_drain_lock(pair.pk):  # no drain of the pair syncs these invoices at the same moment
        due = list(due_invoices(pair, today).values_list("invoice_id", "due_on"))
        counts["due"] = len(due)
        if due:
            budget.check_budget(pair.pipedrive_connection.company_id, 0, urgent=False)
        # One run for every chunk: a customer with invoices in several chunks is read once.
        run = InvoiceRun(pair, TRIGGER)
        run.recheck_other_deals = False  # a passing due date changes no balance: no credit re-check
        for chunk in chunks(due, BATCH_SIZE):
            ids = [invoice_id for invoice_id, _ in chunk]
            with trigger_cause(TRIGGER, TRIGGER_TEXT):
                outcomes = run.sync_ids(ids)
            handled: dict = defaultdict(list)
            for invoice_id, due_on in chunk:
                outcome = outcomes.get(invoice_id)
                status = outcome.status if outcome else "failed"
                counts[status] = counts.get(status, 0) + 1
                if status != "retry":
                    handled[due_on].append(invoice_id)
            for due_on, handled_ids in handled.items():
                # The due date as picked: a date moved meanwhile is handled again once it passes.
                KnownInvoice.objects.filter(pair=pair, invoice_id__in=handled_ids).update(
                    rolled_over_due_on=due_on
                )
        if options.overdue_reminders:
            counts["reminders"] = remind_owners(pair, today, pipedrive)
        closed = reminders.close_settled_from_ledger(pair, pipedrive)
        if closed:
            counts["reminders closed"] = closed
    logger.info("Overdue check of %s on %s: %s", pair, today, counts)
    return counts


def remind_owners(pair: SyncPair, today, pipedrive) -> dict:
    """One activity per invoice overdue on ``today`` (as the ledger has it after the re-sync) that has
    none for its due date yet; BudgetExhausted stops (the rest are made on a later pass)."""
    figures: dict[str, int] = {}
    reminded = OverdueReminder.objects.filter(
        Q(activity_id__isnull=False) | Q(done_at__isnull=False),
        pair=pair, invoice_id=OuterRef("invoice_id"), due_on=OuterRef("due_on"),
    )  # fmt: skip
    overdue = KnownInvoice.objects.filter(
        ~Exists(reminded), pair=pair, status="AUTHORISED", amount_due__gt=0, due_on__lt=today
    )
    for invoice in overdue.order_by("due_on", "invoice_id"):
        outcome = reminders.remind_owner(pair, invoice, today, pipedrive())
        figures[outcome] = figures.get(outcome, 0) + 1
    return figures
