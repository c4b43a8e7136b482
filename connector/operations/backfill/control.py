"""Run control: start a preview, settle ambiguous matches, confirm, pause, resume, cancel, and hand on
stalled runs."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, ConnectorError, RateLimited
from connector.limits import ratelimit
from connector.models import BackfillAmbiguity, BackfillRun, DeferredJob, SyncPair
from connector.operations.backfill.paging import BackfillError, lease_seconds
from connector.operations.backfill.preview import Preview

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


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
        run.last_error = run.state_message = f"The preview could not be made: {describe_error(exc)}"
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
    drop_resume_jobs(run.pk)


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
    drop_resume_jobs(run.pk)


RESUME_FUNC = "connector.operations.backfill.resume_after_reset"


def drop_resume_jobs(run_id: int) -> None:
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


def describe_error(exc: Exception) -> str:
    if isinstance(exc, BudgetExhausted):
        return f"a daily limit is spent until {exc.resets_at:%Y-%m-%d %H:%M} UTC ({exc})"
    if isinstance(exc, ConnectionBroken | AuthExpired):
        return f"a connection needs attention ({exc}); reconnect it, then resume"
    return str(exc) or type(exc).__name__
