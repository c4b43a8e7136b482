"""Reconciliation: repair what webhooks missed by asking Xero what changed, on a schedule per pair.

Every ``reconciliation_interval_minutes`` (pair option, default 15; 0 turns it off) a django-q2
schedule runs ``reconcile_pair``: it asks Xero for the contacts, sales invoices and payments modified
since the start of the last successful pass minus an overlap (``If-Modified-Since``, 1,000 records
per call) and feeds them to the same sync services the webhooks use. A record whose Pipedrive payload
is the one last written (the payload hash on its record link) costs no Pipedrive call, so a quiet
pass costs three Xero calls. A pair with the option ``reconciliation_only`` needs no public URL:
this schedule alone keeps Pipedrive level.

Each chunk is synced under the pair's drain lock and skips records whose webhook arrived after the
page was fetched (the drain syncs them as Xero has them now). A pass that meets a spent budget or a
broken connection does not move the "since" mark, so the next pass covers the same ground.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from connector.connections.services import pipedrive_client, xero_client
from connector.errors import BudgetExhausted, ConnectorError
from connector.intake.drain import pair_drain_lock
from connector.limits import budget
from connector.models import BackfillRun, ReconciliationState, SyncPair
from connector.operations.window import received_since, record_id
from connector.options import pair_options
from connector.sync.contacts import ContactSync
from connector.sync.invoices import InvoiceRun
from connector.sync.payments import PaymentRun
from connector.sync.record_types import RECONCILED_TYPES

logger = logging.getLogger(__name__)

SCHEDULE_PREFIX = "connector: reconcile pair "
DEFAULT_INTERVAL = 15
# From the registry of record types (connector/sync/record_types.py), in the order they run.
ORDER = {t.resource: t.id_field for t in RECONCILED_TYPES}
WHERE = {t.resource: t.sales_filter for t in RECONCILED_TYPES}
CATEGORIES = {t.resource: t.category for t in RECONCILED_TYPES}


def overlap() -> dt.timedelta:
    """Reach back this far before the last pass's start: clock skew between us and Xero, and
    records saved in Xero while the last pass was paging."""
    return dt.timedelta(minutes=float(getattr(settings, "RECONCILIATION_OVERLAP_MINUTES", 5)))


# --- The schedule, kept in step with the pair's option ---------------------------------------------


def schedule_name(pair_id: int) -> str:
    return f"{SCHEDULE_PREFIX}{pair_id}"


def ensure_schedule(pair: SyncPair):
    """Create, update or delete the pair's schedule to match its option (idempotent); returns it or None."""

    options = pair_options(pair)
    minutes = options.reconciliation_interval_minutes
    if not minutes and options.reconciliation_only:
        minutes = DEFAULT_INTERVAL  # without webhooks, reconciliation cannot be off
    name = schedule_name(pair.pk)
    if not pair.enabled or not minutes:
        Schedule.objects.filter(name=name).delete()
        return None
    wanted = {
        "func": "connector.tasks.reconcile_pair",
        "args": repr(pair.pk),
        "schedule_type": Schedule.MINUTES,
        "minutes": minutes,
        "repeats": -1,
    }
    schedule = Schedule.objects.filter(name=name).first()
    if schedule is None:
        return Schedule.objects.create(
            name=name, next_run=timezone.now() + dt.timedelta(minutes=minutes), **wanted
        )
    changed = {k: v for k, v in wanted.items() if getattr(schedule, k) != v}
    if changed:
        if "minutes" in changed:  # the new interval counts from now, not from the old next run
            changed["next_run"] = timezone.now() + dt.timedelta(minutes=minutes)
        Schedule.objects.filter(pk=schedule.pk).update(**changed)
        schedule.refresh_from_db()
    return schedule


def ensure_all_schedules() -> int:
    """Every pair's schedule as its options say; schedules of deleted pairs removed."""

    pairs = list(SyncPair.objects.all())
    for pair in pairs:
        ensure_schedule(pair)
    names = {schedule_name(p.pk) for p in pairs}
    stale = Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=names)
    stale.delete()
    return len(pairs)


def drop_schedule(pair_id: int) -> None:

    Schedule.objects.filter(name=schedule_name(pair_id)).delete()


# --- One pass ---------------------------------------------------------------------------------------


def reconcile_pair(pair_id: int) -> dict:
    """One reconciliation pass of the pair (the schedule's task); returns what it did."""
    pair = (
        SyncPair.objects.select_related("xero_connection", "pipedrive_connection").filter(pk=pair_id).first()
    )
    if pair is None or not pair.enabled:
        return {"skipped": "no such enabled pair"}
    if BackfillRun.objects.filter(pair=pair, status=BackfillRun.Status.RUNNING).exists():
        return {"skipped": "a backfill is running; it syncs what changes meanwhile itself"}
    state, _ = ReconciliationState.objects.get_or_create(pair=pair)
    started = timezone.now()
    since = (state.last_success_started_at or pair.created_at) - overlap()
    try:
        budget.check_budget(pair.pipedrive_connection.company_id, 0, urgent=False)
        counts = reconcile_since(pair, since, trigger="reconciliation")
    except BudgetExhausted as exc:
        message = (
            f"Waiting for the Pipedrive budget or Xero day limit to reset ({exc}); the next pass catches up."
        )
        ReconciliationState.objects.filter(pk=state.pk).update(last_run_at=started, last_error=message)
        return {"deferred": message}
    except ConnectorError as exc:
        ReconciliationState.objects.filter(pk=state.pk).update(
            last_run_at=started, last_error=str(exc)[:2000]
        )
        logger.warning("Reconciliation of %s stopped: %s", pair, exc)
        return {"error": str(exc)}
    ReconciliationState.objects.filter(pk=state.pk).update(
        last_success_started_at=started, last_run_at=started, last_counts=counts, last_error=""
    )
    return counts


def reconcile_since(
    pair: SyncPair, since, *, trigger: str = "reconciliation", xero=None, pipedrive=None
) -> dict:
    """Sync the contacts, sales invoices and payments Xero reports modified since ``since``.

    Returns per kind how many Xero listed and each outcome. Whole-run problems (budget, limits,
    connections) raise.
    """

    xero = xero or xero_client(pair.xero_connection)
    pipedrive = pipedrive or pipedrive_client(pair.pipedrive_connection)
    contacts = ContactSync(pair, trigger=trigger, xero=xero, pipedrive=pipedrive)
    invoices = InvoiceRun(pair, trigger)
    invoices._xero, invoices._pipedrive = xero, pipedrive
    payments = PaymentRun(pair, trigger)
    payments.invoices = invoices
    counts: dict[str, dict] = {}
    chunk = int(getattr(settings, "BACKFILL_CHUNK", 25))
    for resource in ("Contacts", "Invoices", "Payments"):
        figures = counts.setdefault(resource.lower(), {"listed": 0})
        page = 1
        while True:
            rows, pagination = xero.get_page(
                resource, page, 1000, order=ORDER[resource], where=WHERE[resource],
                modified_since=since, include_archived=resource == "Contacts",
            )  # fmt: skip
            fetched_at = timezone.now()
            figures["listed"] += len(rows)
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                with pair_drain_lock(pair.pk):
                    newer = received_since(pair, CATEGORIES[resource], part, fetched_at)
                    part = [r for r in part if record_id(r).lower() not in newer]
                    figures["left to the webhook"] = figures.get("left to the webhook", 0) + len(newer)
                    for outcome in _sync(resource, part, contacts, invoices, payments):
                        key = outcome.action or outcome.status
                        figures[key] = figures.get(key, 0) + 1
            pages = pagination.get("pageCount")
            if (pages is not None and page >= int(pages)) or (pages is None and len(rows) < 1000) or not rows:
                break
            page += 1
    logger.info("Reconciliation of %s since %s: %s", pair, since, counts)
    return counts


def _sync(resource: str, records: list[dict], contacts, invoices, payments):
    if not records:
        return []
    if resource == "Contacts":
        return [contacts.sync_one(r) for r in records]
    if resource == "Invoices":
        return list(invoices.sync_batch(records).values())
    return [payments.sync_one(r, None) for r in records]


def on_pair_saved(pair: SyncPair) -> None:
    """After a pair is saved (its options may have changed): its schedule follows, after the commit."""
    transaction.on_commit(lambda: ensure_schedule(pair))
