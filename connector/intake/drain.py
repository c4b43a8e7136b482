"""Draining the inbox: claim a pair's pending events, coalesce them, sync, and record each outcome.

Order per record, not per pair: a drain claims only rows of records that no other drain holds (no
row of the same record is processing), so two changes of one record are never synced at once or
out of order, and an older copy of a record fetched by one drain can never overwrite a newer one
written by another; different records of one pair sync in parallel, in as many drains as the
workers run. Claims of one pair are serialized (a transaction lock held for the claim's short
transaction only, ``connector.locks.claim_lock``), and rows are claimed with ``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL and a conditional UPDATE everywhere, under a claim token. A
backfill or reconciliation chunk, which syncs records it fetched itself, takes the pair's drain
lock exclusively (``pair_drain_lock``); drains hold it shared (``drains_of_pair``).

No transaction is held across a sync (HTTP). Each record's rows are finished as soon as its sync
ends, so a killed worker leaves only its unfinished records to redo (their rows stay processing,
and so keep their record from other drains, until the sweep takes them back at the lease; a live
drain renews the lease of what it holds as it goes, so only a dead drain's rows run out). A
drain keeps claiming until nothing claimable is left, so events stored while it runs are not left
behind (an event of a record another drain holds is claimed by that drain's next round), but only
for ``INBOX_DRAIN_SECONDS`` (well inside the task timeout, which would kill it): it claims what it
can finish in the time left and hands the rest to a new drain. Transient failures (a 5xx or
time-out that outlasted the client's retries) put rows back to pending for a later drain, up to
``INBOX_MAX_ATTEMPTS`` failed tries (claims are not counted: a row re-claimed after a killed
worker is no closer to failing). The sweep re-enqueues drains for rows left pending (a lost
broker message) or processing (a killed worker).
"""

import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone
from django_q.models import Schedule

from audit.services import sync_cause
from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, RateLimited
from connector.intake.inbox import XERO_SYNCED_CATEGORIES, request_drain
from connector.intake.pipedrive_events import (
    InvalidPipedriveBody,
    apply_pipedrive_event,
    parse_pipedrive_body,
)
from connector.limits.ratelimit import XeroLimiter
from connector.locks import claim_lock, lock_path, named_lock
from connector.logging import redact
from connector.models import ConnectionStatus, SyncPair, WebhookEvent
from connector.sync import sync_records
from connector.sync.common import RETRY_ERRORS

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status
MAX_ROUNDS = 1000  # a safety stop; each round claims up to INBOX_CLAIM_BATCH rows
MAX_REASON = 2000


def _sync_records(pair, category, resource_ids, trigger="webhook", on_outcome=None):
    """The sync service (connector.sync); one name tests can replace."""
    return sync_records(pair, category, resource_ids, trigger=trigger, on_outcome=on_outcome)


@dataclass
class DrainReport:
    """What one drain did, for the task result and the tests."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    ignored: int = 0
    released: int = 0  # put back to pending (rate limit, budget, broken connection, transient error)
    retried: int = 0  # of those, put back after a transient error, for a later drain
    stopped_by: str = ""
    handed_over: bool = False  # time was up with rows pending: a new drain was asked for
    batch_wait_seconds: float = 0.0  # waited to fill Xero batches (the Xero minute short of room)
    # Rows whose sync failed transiently: held (processing) until the drain ends, so this drain
    # does not claim them again at once, then released or, past the attempts, failed.
    to_retry: list = field(default_factory=list, repr=False)
    # The claim tokens of this drain's rounds, and when their lease was last renewed (see keep_claims).
    claim_tokens: set = field(default_factory=set, repr=False)
    renewed_at: float = field(default_factory=time.monotonic, repr=False)
    renewed_by_keeper: bool = field(default=False, repr=False)  # a ClaimKeeper thread renews the leases

    def as_dict(self) -> dict:
        hidden = ("to_retry", "claim_tokens", "renewed_at", "renewed_by_keeper")
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


class _Stop(Exception):
    """A whole-batch error: the remaining claimed rows go back to pending and the drain ends."""

    def __init__(self, reason: str, retry_at=None):
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at


TIME_UP = "handed to the next drain (this one's time was up)"


class _TimeUp(_Stop):
    """The drain's time is up: the unfinished claimed rows go back to pending for the next drain."""

    def __init__(self):
        super().__init__(TIME_UP)


# ---------------------------------------------------------------- claiming


def claim_pending(pair_id: int, limit: int) -> list[WebhookEvent]:
    """Claim up to ``limit`` pending rows of the pair, oldest event first, leaving out the records
    another drain holds (a row of theirs is processing); short transaction, one claim of a pair at
    a time (so two drains cannot each take a row of the same record)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        claim_lock(f"claim:{pair_id}")
        held = WebhookEvent.objects.filter(
            pair_id=pair_id,
            status=Status.PROCESSING,
            source=OuterRef("source"),
            category=OuterRef("category"),
            resource_id=OuterRef("resource_id"),
        )
        pending = (
            WebhookEvent.objects.filter(pair_id=pair_id, status=Status.PENDING)
            .exclude(Exists(held))
            .order_by("event_time", "id")
        )
        pending = _fresh_or_suspects(pending)
        if pending is None:
            return []
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        ids = list(pending.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        # Conditional: on a database without row locks, a row another drain took is not re-taken.
        WebhookEvent.objects.filter(id__in=ids, status=Status.PENDING).update(
            status=Status.PROCESSING, claimed_at=now, claim_token=token
        )
    claimed = WebhookEvent.objects.filter(id__in=ids, claim_token=token, status=Status.PROCESSING)
    return list(claimed.order_by("event_time", "id"))


# Events whose worker was lost twice may hold the record that stops workers: they wait until the other
# pending work is claimed, then go in a small batch, then (lost once more) one record at a time, so such
# a record takes ever fewer others down with it and is given up at INBOX_MAX_LOST_CLAIMS.
SUSPECT_AFTER_LOST = 2
SUSPECT_BATCH = 10


def _fresh_or_suspects(pending):
    """The pending rows to claim from: those not suspected first (in their usual batches); when only
    suspects are left, those of up to SUSPECT_BATCH records lost SUSPECT_AFTER_LOST times, or else of the
    least-lost record alone. None when nothing is pending."""
    fresh = pending.filter(lost_claims__lt=SUSPECT_AFTER_LOST)
    if fresh.exists():
        return fresh
    suspects = pending.order_by("lost_claims", "event_time", "id")
    lost = suspects.values_list("lost_claims", flat=True).first()
    if lost is None:
        return None
    wanted = 1 if lost > SUSPECT_AFTER_LOST else SUSPECT_BATCH
    records: list[tuple] = []
    keys = suspects.filter(lost_claims=lost).values_list("source", "category", "resource_id")
    for key in keys[: wanted * 20]:  # a record has a few events at most; bounded either way
        if key not in records:
            records.append(key)
            if len(records) == wanted:
                break
    match = Q(pk__in=[])
    for source, category, resource_id in records:
        match |= Q(source=source, category=category, resource_id=resource_id)
    return suspects.filter(match)


def _still_ours(rows: list[WebhookEvent]):
    """The rows, unless the sweep took them back (lease expired) and another drain claimed them since."""
    return WebhookEvent.objects.filter(
        id__in=[r.id for r in rows], status=Status.PROCESSING, claim_token=rows[0].claim_token
    )


def renew_claims_every() -> float:
    """Seconds between a drain's lease renewals: a quarter of INBOX_CLAIM_LEASE_SECONDS (one name
    tests replace)."""
    return settings.INBOX_CLAIM_LEASE_SECONDS / 4


def keep_claims(report: DrainReport, *, force: bool = False) -> int:
    """Renew the lease of the rows this live drain still holds (processing under one of its claim
    tokens), at most every quarter lease unless ``force``; returns the rows renewed.

    The sweep takes back rows processing past the lease as a lost worker's and counts a loss on them.
    Without renewal a drain that is alive but slow (a loaded machine, a long batch, rows held for a
    retry until the drain ends) lost its rows to the sweep as if it had died: counted lost each time
    (given up at INBOX_MAX_LOST_CLAIMS though no worker died) and claimed by a second drain while the
    first still synced them. Renewed, a lease runs out only when its drain has stopped, so a loss is
    counted once per real loss."""
    if not report.claim_tokens or (report.renewed_by_keeper and not force):
        return 0  # the keeper thread renews them already
    now = time.monotonic()
    if not force and now - report.renewed_at < renew_claims_every():
        return 0
    report.renewed_at = now
    return WebhookEvent.objects.filter(claim_token__in=report.claim_tokens, status=Status.PROCESSING).update(
        claimed_at=timezone.now()
    )


class ClaimKeeper:
    """Renews the drain's leases from a thread of its own every quarter lease while the drain runs.

    ``keep_claims`` in the drain's own thread runs only between records, so a drain blocked inside one
    sync (waiting for a Xero call slot a killed worker still holds, a lock, a slow answer) let its
    leases lapse: the sweep took the rows back as a lost worker's, counted a loss on them each time
    and gave them up after INBOX_MAX_LOST_CLAIMS though no worker had died that often (the killed-
    workers run). Inside a transaction (a test's) nothing is started: another connection could not
    see the rows, and its wait for the database would only stall."""

    def __init__(self, report: DrainReport):
        self.report = report
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "ClaimKeeper":
        if not connection.in_atomic_block:
            self.thread = threading.Thread(target=self.run, name="drain-claim-keeper", daemon=True)
            self.thread.start()
            self.report.renewed_by_keeper = True
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.report.renewed_by_keeper = False

    def run(self) -> None:
        try:
            while not self.stopped.wait(renew_claims_every()):
                tokens = self.report.claim_tokens.copy()
                if not tokens:
                    continue
                try:
                    WebhookEvent.objects.filter(claim_token__in=tokens, status=Status.PROCESSING).update(
                        claimed_at=timezone.now()
                    )
                except DatabaseError as exc:  # the database away a moment: the next turn tries again
                    logger.warning("Renewing the drain's claims failed: %s", exc)
        finally:
            connection.close()  # this thread's own connection


def _finish(rows: list[WebhookEvent], status: str, reason: str, report: DrainReport) -> None:
    if not rows:
        return
    _still_ours(rows).update(
        status=status, reason=reason[:MAX_REASON], processed_at=timezone.now(), claim_token=""
    )
    setattr(report, status, getattr(report, status) + len(rows))


def _release(rows: list[WebhookEvent], reason: str, report: DrainReport) -> None:
    """Back to pending, with why, for a later drain."""
    if not rows:
        return
    report.released += _still_ours(rows).update(
        status=Status.PENDING, reason=reason[:MAX_REASON], claimed_at=None, claim_token=""
    )


# ---------------------------------------------------------------- batching against the Xero minute

FULL_BATCH = 100  # Xero's IDs= / ContactIDs= / InvoiceIDs= take up to 100 ids per call
ARRIVAL_SECONDS = 1.0  # the recent arrival rate of a pair's Xero events is measured over this long
BATCH_POLL_SECONDS = 0.1


def _clock() -> float:  # names the tests replace
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _wall_now() -> datetime:  # the moment arrivals are counted back from (``received_at``)
    return timezone.now()


def batch_wait_seconds() -> float:
    """The most a drain waits to fill a batch when the Xero minute is short of room
    (INBOX_BATCH_WAIT_SECONDS, 2 s)."""
    return float(settings.INBOX_BATCH_WAIT_SECONDS)


def _claimable_xero(pair_id: int):
    return WebhookEvent.objects.filter(
        pair_id=pair_id,
        status=Status.PENDING,
        source=WebhookEvent.Source.XERO,
        category__in=XERO_SYNCED_CATEGORIES,
    )


def xero_short_of_room(pair: SyncPair) -> bool:
    """Whether the Xero minute cannot afford reading the pair's events as they arrive.

    Reading at once costs about one call per event while events come slower than a drain's round;
    at the rate they arrived over the last ARRIVAL_SECONDS that is ``rate times the window's length``
    calls before the window has turned, against the calls the limiter has left in it now (its
    ``room``). A lone change, or a steady trickle the minute can carry, is read at once; a burst
    (a batch of invoices, a payment run), or any change once the window runs low, waits for a fuller
    batch. The limiter's state decides, not a fixed window."""
    limiter = XeroLimiter(pair.xero_connection.tenant_id)
    minute = next(w for w in limiter.windows(1) if w.kind == "minute")
    since = _wall_now() - timedelta(seconds=ARRIVAL_SECONDS)
    recent = WebhookEvent.objects.filter(
        pair_id=pair.pk,
        source=WebhookEvent.Source.XERO,
        category__in=XERO_SYNCED_CATEGORIES,
        received_at__gte=since,
    ).count()
    calls_if_read_at_once = recent * minute.seconds / ARRIVAL_SECONDS
    return calls_if_read_at_once > limiter.room("minute")


def _largest_category(pair_id: int) -> int:
    counts = _claimable_xero(pair_id).values("category").annotate(n=Count("id")).values_list("n", flat=True)
    return max(counts, default=0)


def wait_for_fuller_batch(pair: SyncPair, deadline: float) -> float:
    """Before a claim: when Xero events are pending and the Xero minute is short of room, wait (at
    most ``batch_wait_seconds``, never past the drain's deadline) until one category has a full batch
    of FULL_BATCH ids pending; with room, or a full batch, or only Pipedrive events, claim at once.
    Returns the seconds waited (for the drain's report)."""
    if batch_wait_seconds() <= 0:
        return 0.0
    pending = _largest_category(pair.pk)
    if pending == 0 or pending >= FULL_BATCH:
        return 0.0
    if not xero_short_of_room(pair):
        return 0.0
    started = _clock()
    until = min(started + batch_wait_seconds(), deadline)
    while _clock() < until:
        _sleep(min(BATCH_POLL_SECONDS, max(0.0, until - _clock())))
        if _largest_category(pair.pk) >= FULL_BATCH:
            break
    return _clock() - started


# ---------------------------------------------------------------- processing


def _error_text(exc: Exception) -> str:
    # The class and message only, no traceback; redacted as logs are, in case a library's message
    # quotes a request with a token in it.
    return redact(f"{type(exc).__name__}: {exc}")


def _apply_pipedrive(pair: SyncPair, rows: list[WebhookEvent], report: DrainReport) -> None:
    for row in rows:
        try:
            outcome = apply_pipedrive_event(pair, parse_pipedrive_body(row.payload))
        except InvalidPipedriveBody as exc:
            _finish([row], Status.FAILED, f"unreadable payload: {exc}", report)
            continue
        except Exception as exc:
            logger.exception("Applying Pipedrive event %s failed", row.pk)
            _finish([row], Status.FAILED, _error_text(exc), report)
            continue
        _finish([row], outcome.status, outcome.reason, report)


def _hold_for_retry(rows: list[WebhookEvent], reason: str, report: DrainReport) -> None:
    """A failed try: counted on the rows at once (a worker killed later keeps the count), and the rows
    held (processing) until the drain ends, so this drain does not claim them again at once."""
    _still_ours(rows).update(attempts=F("attempts") + 1)
    for row in rows:
        row.attempts += 1
        report.to_retry.append((row, reason))


def _finish_outcome(rows: list[WebhookEvent], outcome, report: DrainReport) -> None:
    """Every row of one resource gets that resource's outcome."""
    reason = getattr(outcome, "reason", "") or ""
    if outcome.status == "retry":
        _hold_for_retry(rows, reason, report)
        return
    status = outcome.status if outcome.status in (Status.DONE, Status.FAILED, Status.IGNORED) else "failed"
    _finish(rows, status, reason, report)


def _sync_category(
    pair: SyncPair, category: str, rows: list[WebhookEvent], report: DrainReport, deadline: float
) -> None:
    """One sync call for the category; each resource's rows are finished as its sync ends."""
    by_resource: dict[str, list[WebhookEvent]] = defaultdict(list)
    for row in rows:  # insertion order: the oldest event of each resource first
        by_resource[row.resource_id].append(row)
    unfinished = {resource_id.lower(): resource_rows for resource_id, resource_rows in by_resource.items()}

    def on_outcome(resource_id, outcome):
        resource_rows = unfinished.pop(str(resource_id).lower(), None)
        if resource_rows and outcome is not None:
            _finish_outcome(resource_rows, outcome, report)
        keep_claims(report)
        if time.monotonic() > deadline and unfinished:
            raise _TimeUp()

    try:
        with sync_cause(  # each sync record names the events behind it
            category,
            {
                resource_id: [row.id for row in resource_rows]
                for resource_id, resource_rows in by_resource.items()
            },
            {
                resource_id: max(row.attempts or 1 for row in resource_rows)
                for resource_id, resource_rows in by_resource.items()
            },
        ):
            outcomes = _sync_records(
                pair, category, list(by_resource), trigger="webhook", on_outcome=on_outcome
            )
    except _Stop:
        raise
    except RateLimited as exc:
        raise _Stop(
            f"rate limited: {exc}", timezone.now() + timedelta(seconds=max(exc.retry_after, 1))
        ) from exc
    except BudgetExhausted as exc:
        raise _Stop(f"daily budget spent: {exc}", exc.resets_at) from exc
    except (ConnectionBroken, AuthExpired) as exc:
        raise _Stop(f"connection broken: {exc}") from exc
    except RETRY_ERRORS as exc:  # a failed try: 5xx, time-outs, the database or Redis away a moment
        _hold_for_retry([r for rs in unfinished.values() for r in rs], _error_text(exc), report)
        return
    except Exception as exc:
        logger.exception("Syncing %s for pair %s failed", category, pair.pk)
        _finish([r for rs in unfinished.values() for r in rs], Status.FAILED, _error_text(exc), report)
        return
    for resource_id, outcome in (outcomes or {}).items():
        resource_rows = unfinished.pop(str(resource_id).lower(), None)
        if resource_rows and outcome is not None:
            _finish_outcome(resource_rows, outcome, report)
    for resource_rows in unfinished.values():
        _finish(resource_rows, Status.FAILED, "no outcome", report)


def _process(pair: SyncPair, rows: list[WebhookEvent], report: DrainReport, deadline: float) -> None:
    """Pipedrive events first (they re-point links), then contacts, invoices and payments."""
    # Checked again here, not only at intake: an admin may reprocess a row ignored for its tenant.
    company = str(pair.pipedrive_connection.company_id or "")
    foreign = [
        r
        for r in rows
        if r.tenant_id
        != (pair.xero_connection.tenant_id if r.source == WebhookEvent.Source.XERO else company)
    ]
    _finish(foreign, Status.IGNORED, "the tenant is not joined to this pair", report)
    foreign_ids = {r.id for r in foreign}
    rows = [r for r in rows if r.id not in foreign_ids]
    pipedrive = [r for r in rows if r.source == WebhookEvent.Source.PIPEDRIVE]
    xero = [r for r in rows if r.source == WebhookEvent.Source.XERO]
    _apply_pipedrive(pair, pipedrive, report)
    other = [r for r in xero if r.category not in XERO_SYNCED_CATEGORIES]
    _finish(other, Status.IGNORED, "category not synced", report)
    for category in XERO_SYNCED_CATEGORIES:  # an invoice needs its contact's organization first
        batch = [r for r in xero if r.category == category]
        if batch:
            _sync_category(pair, category, batch, report, deadline)  # _Stop ends the round


def pair_drain_lock(pair_id: int):
    """Exclusive against every drain of the pair: for work that syncs records it fetched itself (a
    backfill or reconciliation chunk), which must not interleave with a drain's newer copy. On
    SQLite the pair's own lock file (never shared with record locks)."""
    return named_lock(f"drain:{pair_id}", path=lock_path("drains", f"pair-{pair_id}"))


def drains_of_pair(pair_id: int):
    """Held by each drain of the pair: shared, so the pair's drains run side by side (their claims
    keep each record to one drain), exclusive only against ``pair_drain_lock``."""
    return named_lock(f"drain:{pair_id}", path=lock_path("drains", f"pair-{pair_id}"), shared=True)


def retry_delay(attempts: int) -> timedelta:
    """Back-off before a transiently failed event is tried again: INBOX_RETRY_DELAY_SECONDS (a minute),
    then twice that, four times … at most 30 minutes."""
    seconds = settings.INBOX_RETRY_DELAY_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 30 * 60))


def _settle_retries(pair_id: int, report: DrainReport) -> None:
    """Rows that failed transiently: back to pending with a later drain, or failed past the attempts."""
    if not report.to_retry:
        return
    limit = settings.INBOX_MAX_ATTEMPTS
    latest = max(row.attempts for row, _ in report.to_retry)
    for row, reason in report.to_retry:
        if row.attempts >= limit:
            _finish([row], Status.FAILED, f"gave up after {row.attempts} attempts: {reason}", report)
        else:
            before = report.released
            _release([row], f"will retry (attempt {row.attempts} of {limit}): {reason}", report)
            report.retried += report.released - before
    report.to_retry = []
    if report.retried:
        schedule_drain(pair_id, timezone.now() + retry_delay(latest))


def drain_pair(pair_id: int) -> dict:
    """Process the pair's pending events for up to INBOX_DRAIN_SECONDS; returns the counts (see
    DrainReport). Rows still pending when the time is up go to a new drain. Several drains of one
    pair may run at once (see the module's docstring)."""
    with drains_of_pair(pair_id):
        report = _drain(pair_id)
    if report["handed_over"]:
        request_drain(pair_id, force=True)
    return report


def _claim_size(report: DrainReport, started: float, deadline: float) -> int:
    """Rows to claim: the batch at first, then what the pace so far says fits in the time left."""
    batch = settings.INBOX_CLAIM_BATCH
    elapsed = time.monotonic() - started
    if not report.claimed or elapsed <= 0:
        return batch
    per_row = elapsed / report.claimed
    return max(1, min(batch, int(0.8 * (deadline - time.monotonic()) / per_row)))


def _drain(pair_id: int) -> dict:
    report = DrainReport()
    started = time.monotonic()
    deadline = started + settings.INBOX_DRAIN_SECONDS
    # Cleared before the first claim: a request made from now on enqueues a new drain.
    SyncPair.objects.filter(pk=pair_id).update(drain_requested_at=None)
    pair = (
        SyncPair.objects.select_related("xero_connection", "pipedrive_connection").filter(pk=pair_id).first()
    )
    if pair is None:
        return report.as_dict()
    if not pair.enabled:
        report.stopped_by = "pair disabled"
        return report.as_dict()
    try:
        with ClaimKeeper(report):
            _rounds(pair, report, started, deadline)
    finally:
        keep_claims(report)
        _settle_retries(pair_id, report)
    return report.as_dict()


def _rounds(pair: SyncPair, report: DrainReport, started: float, deadline: float) -> None:
    """Claim and process batches until nothing is pending, the time is up or a batch stops the drain."""
    pair_id = pair.pk
    for _ in range(MAX_ROUNDS):
        if report.claimed and time.monotonic() >= deadline:
            report.handed_over = WebhookEvent.objects.filter(pair_id=pair_id, status=Status.PENDING).exists()
            report.stopped_by = TIME_UP if report.handed_over else ""
            break
        report.batch_wait_seconds += wait_for_fuller_batch(pair, deadline)
        rows = claim_pending(pair_id, _claim_size(report, started, deadline))
        if not rows:
            break
        report.claimed += len(rows)
        report.claim_tokens.add(rows[0].claim_token)
        keep_claims(report)  # the rows held for a retry since earlier rounds
        try:
            _process(pair, rows, report, deadline)
        except _Stop as stop:
            held = {row.id for row, _ in report.to_retry}  # settled below, with their reason
            # Only those still processing under this claim.
            _release([r for r in rows if r.id not in held], stop.reason, report)
            report.stopped_by = stop.reason
            report.handed_over = isinstance(stop, _TimeUp)
            if stop.retry_at is not None:
                schedule_drain(pair_id, stop.retry_at)
            break


LATER_DRAIN = "connector: drain pair {} later"


def _pairs_with_a_later_drain(now) -> set[int]:

    later = Schedule.objects.filter(name__startswith="connector: drain pair ", next_run__gt=now).exclude(
        repeats=0
    )
    return {int(args[1:-2]) for args in later.values_list("args", flat=True) if args[1:-2].isdigit()}


def schedule_drain(pair_id: int, when) -> None:
    """A one-off drain at ``when`` (after a rate limit or a budget reset); one per pair, latest wins."""
    Schedule.objects.update_or_create(
        name=LATER_DRAIN.format(pair_id),
        defaults={
            "func": "connector.tasks.drain_pair",
            "args": repr((pair_id,)),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when,
        },
    )


# ---------------------------------------------------------------- sweeping


LOST_WORKER = "claim expired (the worker was lost)"


def _give_up_on_records_that_stop_workers(now) -> int:
    """Events whose worker was lost INBOX_MAX_LOST_CLAIMS times are failed, with what to do next: such
    a record would otherwise be claimed, stop its worker and come back, for ever."""
    limit = settings.INBOX_MAX_LOST_CLAIMS
    given_up = WebhookEvent.objects.filter(status=Status.PENDING, lost_claims__gte=limit).update(
        status=Status.FAILED,
        processed_at=now,
        reason=(
            f"gave up: the worker syncing this record was lost {limit} times (it crashed, was killed or "
            "ran out of time), the last times with this record alone. Other records were not held up. "
            "Check the workers' log for this record, then reprocess it."
        )[:MAX_REASON],
    )
    if given_up:
        logger.warning("Gave up on %d inbox event(s) whose worker was lost %d times", given_up, limit)
    return given_up


def sweep_inbox() -> dict:
    """Re-enqueue drains for rows a lost message or a dead worker left behind.

    Rows processing past the claim lease go back to pending; pairs with rows pending longer
    than INBOX_SWEEP_AFTER_SECONDS get a drain (request_drain skips pairs whose drain was
    requested recently). Pairs with a broken connection wait for the reconnect.
    """
    now = timezone.now()
    lease_cutoff = now - timedelta(seconds=settings.INBOX_CLAIM_LEASE_SECONDS)
    expired = WebhookEvent.objects.filter(status=Status.PROCESSING, claimed_at__lt=lease_cutoff).update(
        status=Status.PENDING,
        claimed_at=None,
        claim_token="",
        reason=LOST_WORKER,
        lost_claims=F("lost_claims") + 1,
    )
    if expired:  # only an expiry raises a count: nothing to give up otherwise
        _give_up_on_records_that_stop_workers(now)
    pending_cutoff = now - timedelta(seconds=settings.INBOX_SWEEP_AFTER_SECONDS)
    pair_ids = set(
        WebhookEvent.objects.filter(status=Status.PENDING, received_at__lt=pending_cutoff)
        .values_list("pair_id", flat=True)
        .distinct()
    )
    if expired:
        pair_ids |= set(
            WebhookEvent.objects.filter(status=Status.PENDING, reason=LOST_WORKER)
            .values_list("pair_id", flat=True)
            .distinct()
        )
    pair_ids -= _pairs_with_a_later_drain(now)  # waiting out a rate limit or a spent budget
    drainable = (
        SyncPair.objects.filter(pk__in=pair_ids, enabled=True)
        .exclude(xero_connection__status=ConnectionStatus.BROKEN)
        .exclude(pipedrive_connection__status=ConnectionStatus.BROKEN)
        .values_list("pk", flat=True)
    )
    requested = [pair_id for pair_id in drainable if request_drain(pair_id)]
    if expired or requested:
        logger.info(
            "Inbox sweep: %s expired claims released, drains requested for pairs %s", expired, requested
        )
    return {"expired_claims": expired, "drains_requested": len(requested)}
