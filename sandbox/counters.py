"""Call counters and concurrency gauges, readable from Python and over HTTP."""

from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Greatest

from sandbox.models import CallCount, ConcurrencyGauge


def _upsert(model, keys: dict, **increments) -> int:
    """Add to counters atomically (one UPDATE), creating the row on first use."""
    updates = {name: F(name) + amount for name, amount in increments.items()}
    if model.objects.filter(**keys).update(**updates):
        return 1
    try:
        with transaction.atomic():
            model.objects.create(**keys, **increments)
    except IntegrityError:  # another caller created it first
        model.objects.filter(**keys).update(**updates)
    return 1


def count_call(service: str, tenant: str, endpoint: str, status: int, tokens: int = 0) -> None:
    _upsert(
        CallCount,
        {"service": service, "tenant": tenant or "", "endpoint": endpoint, "status": status},
        count=1,
        tokens=tokens,
    )


@contextmanager
def in_flight(service: str, tenant: str, limit: int | None = None, counts: list | None = None):
    """Hold one of ``limit`` concurrent slots (any number when None); record the peak.

    Yields True when a slot was taken, False when the limit was reached (the caller
    answers 429); the slot is released on exit either way. ``counts``: calls the holder
    appended as ``(endpoint, status, tokens)`` by then are counted (``count_call``) in the
    release's transaction: one commit at the end of a call, not one per counter.
    """
    keys = {"service": service, "tenant": tenant or ""}
    rows = ConcurrencyGauge.objects.filter(**keys)
    if limit is not None:
        rows = rows.filter(current__lt=limit)
    # One conditional UPDATE: atomic on SQLite and PostgreSQL alike.
    take = {"current": F("current") + 1, "peak": Greatest(F("peak"), F("current") + 1)}
    taken = rows.update(**take) == 1
    if not taken:
        # No row yet (the gauge's first calls, racing to make it) or no free slot: make sure the row
        # exists, then try once more (made once, not looked up on every call).
        ConcurrencyGauge.objects.get_or_create(**keys)
        taken = rows.update(**take) == 1
    try:
        yield taken
    finally:
        if counts or taken:
            with transaction.atomic():
                for endpoint, status, tokens in counts or ():
                    count_call(service, tenant, endpoint, status, tokens=tokens)
                if taken:
                    ConcurrencyGauge.objects.filter(**keys).update(current=F("current") - 1)


def snapshot(service: str, tenant: str | None = None) -> dict:
    """Calls by endpoint and status, tokens spent, and peak concurrency."""
    calls = CallCount.objects.filter(service=service)
    gauges = ConcurrencyGauge.objects.filter(service=service)
    if tenant is not None:
        calls = calls.filter(tenant=tenant)
        gauges = gauges.filter(tenant=tenant)
    by_endpoint: dict[str, dict[str, int]] = {}
    tokens_by_endpoint: dict[str, int] = {}
    for row in calls:
        by_endpoint.setdefault(row.endpoint, {})
        by_endpoint[row.endpoint][str(row.status)] = (
            by_endpoint[row.endpoint].get(str(row.status), 0) + row.count
        )
        tokens_by_endpoint[row.endpoint] = tokens_by_endpoint.get(row.endpoint, 0) + row.tokens
    totals = calls.aggregate(calls=Sum("count"), tokens=Sum("tokens"))
    return {
        "service": service,
        "tenant": tenant,
        "calls": totals["calls"] or 0,
        "tokens": totals["tokens"] or 0,
        "by_endpoint": by_endpoint,
        "tokens_by_endpoint": {k: v for k, v in tokens_by_endpoint.items() if v},
        "by_status": _by_status(calls),
        "peak_concurrency": max((g.peak for g in gauges), default=0),
        "in_flight": sum(g.current for g in gauges),
    }


def _by_status(calls) -> dict[str, int]:
    result: dict[str, int] = {}
    for status, total in (
        calls.values_list("status").annotate(total=Sum("count")).values_list("status", "total")
    ):
        result[str(status)] = total
    return result


def calls_to(service: str, endpoint: str, tenant: str | None = None, status: int | None = None) -> int:
    rows = CallCount.objects.filter(service=service, endpoint=endpoint)
    if tenant is not None:
        rows = rows.filter(tenant=tenant)
    if status is not None:
        rows = rows.filter(status=status)
    return rows.aggregate(total=Sum("count"))["total"] or 0


def reset(service: str | None = None) -> None:
    for model in (CallCount, ConcurrencyGauge):
        rows = model.objects.all()
        if service:
            rows = rows.filter(service=service)
        rows.delete()
