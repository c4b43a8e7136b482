"""Replaying sync records: the current Xero record is fetched again and synced through the same
services as a webhook would (``connector.sync.sync_records``), never from stored data.

Each replay writes a new sync record linked to the one replayed (``replay_of``); nothing is
deleted or edited. Many records replay in the background as a ``ReplayRun`` (a django-q2 task)
that shows its progress and, when Xero's or Pipedrive's limits stop it, waits and resumes.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from math import ceil

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from audit.models import ReplayRun, SyncRecord
from audit.services import TYPE_CATEGORIES, record_sync, replay_cause
from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, RateLimited, ServerError
from connector.limits.ratelimit import PipedriveLimiter
from connector.models import WebhookEvent
from connector.sync import sync_records

logger = logging.getLogger(__name__)

CHUNK = 50  # records replayed per sync call (Xero fetches up to 100 ids per call)
SUCCESS = {"created", "updated", "unchanged", "skipped"}
# At most this many Pipedrive tokens per record replayed: a deal update (5) and its organization's
# refresh (5); a payment adds a note (10); a contact its organization and persons.
TOKENS_PER_RECORD = {"contact": 15, "invoice": 10, "payment": 20}


class ReplayRefused(ValueError):
    """This record cannot be replayed (its pair is gone, or its type is not synced from Xero)."""


def replay_problem(record: SyncRecord) -> str:
    """Why ``record`` cannot be replayed, or "" when it can."""
    if record.pair_id is None:
        return "Its sync pair has been deleted."
    if record.xero_type not in TYPE_CATEGORIES:
        return f"{record.xero_type} records are not synced from Xero."
    pair = record.pair
    if pair is None:  # pair_id is set but the row is gone (deleted since it was read)
        return "Its sync pair has been deleted."
    if not pair.enabled:
        return "Its sync pair is disabled: enable the pair first."
    return ""


def _limit_errors():
    return (RateLimited, BudgetExhausted, ConnectionBroken, AuthExpired, ServerError)


def replay_records(records: list[SyncRecord], replay_run: ReplayRun | None = None) -> dict[int, SyncRecord]:
    """Replay these records (one sync call per pair and record type); ``{replayed id: new record}``.

    Whole-run problems (limits, budget, a broken connection) propagate to the caller."""
    groups: dict[tuple, list[SyncRecord]] = {}
    for record in records:
        groups.setdefault((record.pair_id, record.xero_type), []).append(record)
    replayed: dict[int, SyncRecord] = {}
    for (_pair_id, xero_type), group in groups.items():
        pair = group[0].pair
        with replay_cause(group, replay_run) as cause:
            sync_records(pair, TYPE_CATEGORIES[xero_type], [r.xero_id for r in group], trigger="replay")
        for new in cause.written:
            if new.replay_of_id is not None:
                replayed[new.replay_of_id] = new
    return replayed


@dataclass
class ReplayResult:
    record: SyncRecord  # the new sync record
    succeeded: bool
    message: str


def replay_one(record: SyncRecord) -> ReplayResult:
    """Replay one record now. A limit or a broken connection is recorded as the replay's outcome."""
    problem = replay_problem(record)
    if problem:
        raise ReplayRefused(problem)
    try:
        new = replay_records([record]).get(record.pk)
    except _limit_errors() as error:
        new = record_sync(
            pair=record.pair,
            xero_type=record.xero_type,
            xero_id=record.xero_id,
            outcome="deferred",
            trigger=SyncRecord.Trigger.REPLAY,
            replay_of=record,
            attempt=record.attempt + 1,
            label=record.label,
            pipedrive_type=record.pipedrive_type,
            reason=f"The replay could not run now: {error}. Try again later.",
            error=error,
        )
        return ReplayResult(new, False, new.reason)
    if new is None:  # the sync wrote nothing for it (it should always write one): say so
        new = record_sync(
            pair=record.pair,
            xero_type=record.xero_type,
            xero_id=record.xero_id,
            outcome="failed",
            trigger=SyncRecord.Trigger.REPLAY,
            replay_of=record,
            label=record.label,
            reason="The sync gave no outcome for this record.",
        )
    ok = new.outcome in SUCCESS
    what = new.label or f"{record.xero_type} {record.xero_id}"
    message = f"{what}: {new.get_outcome_display().lower()}" + ("" if ok else f" — {new.reason}")
    return ReplayResult(new, ok, message)


# --- Many records, in the background ----------------------------------------------------


def latest_per_xero_record(queryset) -> list[int]:
    """One record per Xero record (the newest), so a record failed three times is replayed once."""
    newest: dict[tuple, int] = {}
    for pk, pair_id, xero_type, xero_id in queryset.order_by("id").values_list(
        "id", "pair_id", "xero_type", "xero_id"
    ):
        newest[(pair_id, xero_type, xero_id.lower())] = pk
    return sorted(newest.values())


@dataclass
class ReplayEstimate:
    records: int
    not_replayable: int
    xero_calls: int
    pipedrive_tokens: int
    budget_left: dict  # pair name -> Pipedrive tokens left today


def estimate(queryset) -> ReplayEstimate:
    """How many records a replay of this selection syncs, and what it costs at most."""
    ids = latest_per_xero_record(queryset)
    records = list(SyncRecord.objects.filter(id__in=ids).select_related("pair"))
    ok = [r for r in records if not replay_problem(r)]
    by_type: dict[str, int] = {}
    for record in ok:
        by_type[record.xero_type] = by_type.get(record.xero_type, 0) + 1
    # One Xero call per 100 records fetched, plus one for their contacts' balances.
    xero_calls = sum(2 * ceil(n / 100) for n in by_type.values())
    tokens = sum(TOKENS_PER_RECORD.get(t, 10) * n for t, n in by_type.items())
    budget = {}
    for pair in {r.pair for r in ok if r.pair is not None}:  # replayable records have a pair
        company = pair.pipedrive_connection.company_id
        if company:
            budget[pair.name] = PipedriveLimiter(str(company)).remaining("daily-tokens")
    return ReplayEstimate(len(ok), len(records) - len(ok), xero_calls, tokens, budget)


def start_bulk_replay(queryset, user=None) -> ReplayRun:
    """A ReplayRun of the selection (one per Xero record), run by a background task."""
    ids = [
        r.pk
        for r in SyncRecord.objects.filter(id__in=latest_per_xero_record(queryset)).select_related("pair")
        if not replay_problem(r)
    ]
    run = ReplayRun.objects.create(created_by=user, record_ids=ids, total=len(ids))
    transaction.on_commit(lambda: enqueue(run))
    return run


def enqueue(run: ReplayRun) -> None:

    async_task("connector.operations.tasks.run_replay", run.pk, task_name=f"bulk replay {run.pk}")


def run_bulk_replay(run_id: int) -> ReplayRun:
    """Replay the run's records from where it stopped, CHUNK at a time, saving progress after each."""
    claimable = [ReplayRun.Status.QUEUED, ReplayRun.Status.WAITING]
    if not ReplayRun.objects.filter(pk=run_id, status__in=claimable).update(
        status=ReplayRun.Status.RUNNING, resumes_at=None, message=""
    ):
        return ReplayRun.objects.get(pk=run_id)  # another worker has it, or it is finished
    run = ReplayRun.objects.get(pk=run_id)
    while run.position < run.total:
        chunk_ids = run.record_ids[run.position : run.position + CHUNK]
        records = list(SyncRecord.objects.filter(id__in=chunk_ids).select_related("pair"))
        replayable = [r for r in records if not replay_problem(r)]
        try:
            replayed = replay_records(replayable, replay_run=run)
        except (RateLimited, BudgetExhausted) as error:
            wait_until = (
                error.resets_at
                if isinstance(error, BudgetExhausted)
                else timezone.now() + timedelta(seconds=max(1.0, error.retry_after))
            )
            return _wait(run, wait_until, str(error))
        except _limit_errors() as error:
            # A broken connection or a Xero/Pipedrive outage: stop; the admin starts it again later.
            run.status = ReplayRun.Status.FAILED
            run.message = f"Stopped after {run.position} of {run.total}: {error}"
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "message", "finished_at"])
            return run
        ok = sum(1 for new in replayed.values() if new.outcome in SUCCESS)
        run.succeeded += ok
        run.failed += len(chunk_ids) - ok
        run.position += len(chunk_ids)
        run.save(update_fields=["succeeded", "failed", "position"])
    run.status = ReplayRun.Status.DONE
    run.finished_at = timezone.now()
    run.message = f"{run.succeeded} synced, {run.failed} still failing."
    run.save(update_fields=["status", "finished_at", "message"])
    return run


def _wait(run: ReplayRun, until, why: str) -> ReplayRun:
    run.status = ReplayRun.Status.WAITING
    run.resumes_at = until
    run.message = f"Paused after {run.position} of {run.total}: {why}. Resumes at {until:%Y-%m-%d %H:%M} UTC."
    run.save(update_fields=["status", "resumes_at", "message"])
    logger.info("Bulk replay %s waits until %s: %s", run.pk, until, why)
    return run


def resume_due_runs() -> int:
    """Runs waiting for a limit whose time has come go back to the queue (a schedule calls this)."""
    due = ReplayRun.objects.filter(status=ReplayRun.Status.WAITING, resumes_at__lte=timezone.now())
    count = 0
    for run in due:
        enqueue(run)
        count += 1
    return count


# --- From the inbox ----------------------------------------------------------------------


def replay_inbox_events(events) -> list[ReplayResult]:
    """Replay failed Xero inbox events: the newest sync record of each event's record is replayed;
    the event is marked done or failed with the replay's outcome."""
    results = []
    for event in events:
        if event.source != WebhookEvent.Source.XERO:
            continue
        xero_type = {"CONTACT": "contact", "INVOICE": "invoice", "PAYMENT": "payment"}.get(event.category)
        if xero_type is None:
            continue
        record = (
            SyncRecord.objects.filter(pair=event.pair, xero_type=xero_type, xero_id__iexact=event.resource_id)
            .order_by("-id")
            .first()
        )
        if record is None:  # never got as far as a sync: a record to replay from
            record = record_sync(
                pair=event.pair,
                xero_type=xero_type,
                xero_id=event.resource_id,
                outcome="failed",
                inbox_event_ids=[event.pk],
                reason=event.reason or "The event failed before its record was synced.",
            )
        result = replay_one(record)
        status = WebhookEvent.Status.DONE if result.succeeded else WebhookEvent.Status.FAILED
        WebhookEvent.objects.filter(pk=event.pk).exclude(status=WebhookEvent.Status.PROCESSING).update(
            status=status, reason=f"Replayed: {result.message}"[:2000], processed_at=timezone.now()
        )
        results.append(result)
    return results
