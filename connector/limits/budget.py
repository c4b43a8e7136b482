"""Daily budgets: check before costly calls, defer non-urgent work to the reset instead of retrying hot.

``run_deferrable`` runs a job now, or — when the company's Pipedrive budget is too low or
runs out mid-way — records a DeferredJob due at the reset. ``run_due_jobs`` (a django-q2
schedule, every few minutes) re-runs the jobs whose reset has passed.
"""

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from connector.errors import BudgetExhausted
from connector.limits import ratelimit
from connector.limits.ratelimit import PipedriveLimiter
from connector.models import DeferredJob

logger = logging.getLogger(__name__)


def reserve() -> int:
    """Tokens kept for urgent work (webhook-driven updates): non-urgent jobs start only above this."""
    return int(getattr(settings, "PIPEDRIVE_BUDGET_RESERVE", 1000))


def check_budget(company_id, cost: int, urgent: bool = False) -> None:
    """Before a list or search call: raise BudgetExhausted if the call would eat into what is left."""
    limiter = PipedriveLimiter(company_id)
    left = limiter.remaining("daily-tokens")
    needed = cost if urgent else cost + reserve()
    if left < needed:
        window = limiter.windows(1)[0]
        raise BudgetExhausted(limiter.resets_at(window), f"Pipedrive budget low: {left} tokens left today")


def defer(company_id, job_name: str, func, args, resets_at, reason: str):

    path = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    message = f"{job_name} deferred to {resets_at:%Y-%m-%d %H:%M} UTC: {reason}"
    logger.warning("%s", message)
    return DeferredJob.objects.create(
        service="pipedrive",
        scope=str(company_id),
        job_name=job_name,
        func=path,
        args=list(args),
        run_after=resets_at,
        message=message,
    )


def defer_if_budget_low(company_id, job_name: str, func, args=(), urgent: bool = False, cost: int = 0):
    """Record a DeferredJob (and return it) when non-urgent work cannot start today; else None."""
    if urgent:
        return None
    try:
        check_budget(company_id, cost)
    except BudgetExhausted as exc:
        return defer(company_id, job_name, func, args, exc.resets_at, str(exc))
    return None


def run_deferrable(company_id, job_name: str, func, *args, urgent: bool = False):
    """Run ``func(*args)`` now, or defer it to the budget reset (non-urgent work only).

    Returns ``("ran", result)`` or ``("deferred", DeferredJob)``. Urgent work is never deferred:
    its BudgetExhausted propagates to the caller.
    """
    deferred = defer_if_budget_low(company_id, job_name, func, args, urgent=urgent)
    if deferred is not None:
        return "deferred", deferred
    try:
        return "ran", func(*args)
    except BudgetExhausted as exc:
        if urgent:
            raise
        return "deferred", defer(company_id, job_name, func, args, exc.resets_at, str(exc))


def run_due_jobs() -> int:
    """Re-run deferred jobs whose reset has passed (a django-q2 schedule calls this)."""

    ran = 0
    for job in DeferredJob.objects.filter(
        status=DeferredJob.Status.WAITING, run_after__lte=ratelimit.now_dt()
    ):
        # Claim it: only one worker re-runs a job.
        claimed = DeferredJob.objects.filter(pk=job.pk, status=DeferredJob.Status.WAITING).update(
            status=DeferredJob.Status.DONE, finished_at=ratelimit.now_dt()
        )
        if not claimed:
            continue
        try:
            outcome, _value = run_deferrable(job.scope, job.job_name, import_string(job.func), *job.args)
        except Exception as exc:
            DeferredJob.objects.filter(pk=job.pk).update(
                status=DeferredJob.Status.FAILED,
                message=f"{job.message}\nRe-run failed: {type(exc).__name__}",
            )
            logger.exception("Deferred job %s failed", job.job_name)
            continue
        note = "re-run after the budget reset" if outcome == "ran" else "deferred again: budget still low"
        DeferredJob.objects.filter(pk=job.pk).update(message=f"{job.message}\n{note}")
        ran += outcome == "ran"
    return ran
