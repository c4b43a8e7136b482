"""Rate limits shared by every process (database rows, serialised per limit).

A call spends units (1 for a Xero call, the operation's token cost for Pipedrive) in every
window that applies to it; if any window would overflow, nothing is spent and the caller
learns which limit tripped and when there is room again.

Two kinds of window, as the real services count:

- rolling (``Limit.rolling``): the units of the last ``seconds`` — Pipedrive's 2-second burst,
  Xero's minute, app minute and day (Xero's day is a rolling 24 hours per tenant, not a UTC
  day). Each call is a ``RateEvent`` row; the window's rows are locked through an anchor row
  so two processes never both take the last unit.
- fixed: a window aligned to the clock (``RateWindow``, one row per window, conditional
  UPDATE) — Pipedrive's daily token budget and daily write count, which reset once a day.
"""

import datetime as dt
import math
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F, Min, Sum

from sandbox import clock
from sandbox.models import RateEvent, RateWindow

# The RateWindow row that serialises the spenders of one rolling limit (window numbers are >= 0).
ANCHOR = -1


@dataclass(frozen=True)
class Limit:
    kind: str  # e.g. "minute", "day", "app-minute", "burst", "daily-tokens"
    scope: str  # what it counts for: a tenant id, "app", an API token
    seconds: float  # window length in sandbox seconds (scaled by the clock)
    limit: int
    rolling: bool = True


@dataclass
class Outcome:
    allowed: bool
    remaining: dict[str, int] = field(default_factory=dict)  # kind -> units left in the window
    resets_in: dict[str, int] = field(default_factory=dict)  # kind -> real seconds until there is room
    tripped: Limit | None = None

    @property
    def retry_after(self) -> int:
        return self.resets_in[self.tripped.kind] if self.tripped else 0


class _Rejected(Exception):
    pass


def _length(limit: Limit) -> float:
    return limit.seconds / clock.scale()


def _window(limit: Limit) -> tuple[int, int]:
    """Fixed windows: (window number, real seconds until it ends) at the current clock."""
    length = _length(limit)
    now = clock.timestamp()
    number = int(now // length)
    return number, max(1, math.ceil((number + 1) * length - now))


def _events(service: str, limit: Limit, now: dt.datetime):
    since = now - dt.timedelta(seconds=_length(limit))
    return RateEvent.objects.filter(service=service, scope=limit.scope, kind=limit.kind, at__gt=since)


def _rolling_state(service: str, limit: Limit, now: dt.datetime) -> tuple[int, int]:
    """(units used in the last window, real seconds until the oldest of them leaves it)."""
    totals = _events(service, limit, now).aggregate(used=Sum("units"), oldest=Min("at"))
    used = totals["used"] or 0
    if not totals["oldest"]:
        return 0, math.ceil(_length(limit))
    leaves = totals["oldest"] + dt.timedelta(seconds=_length(limit)) - now
    return used, max(1, math.ceil(leaves.total_seconds()))


def _lock_rolling(service: str, limit: Limit) -> None:
    keys = {"service": service, "scope": limit.scope, "kind": limit.kind, "window_start": ANCHOR}
    if not RateWindow.objects.filter(**keys).exists():
        try:
            with transaction.atomic():
                RateWindow.objects.create(**keys, used=0)
        except IntegrityError:  # another process made it first
            pass
    RateWindow.objects.select_for_update().filter(**keys).first()


def _spend_rolling(service: str, limit: Limit, units: int, outcome: Outcome, now: dt.datetime) -> None:
    _lock_rolling(service, limit)
    # Rows that left every window of this limit are kept no longer.
    RateEvent.objects.filter(
        service=service,
        scope=limit.scope,
        kind=limit.kind,
        at__lte=now - dt.timedelta(seconds=_length(limit)),
    ).delete()
    used, resets_in = _rolling_state(service, limit, now)
    outcome.resets_in[limit.kind] = resets_in
    if used + units > limit.limit:
        outcome.allowed, outcome.tripped = False, limit
        raise _Rejected
    RateEvent.objects.create(service=service, scope=limit.scope, kind=limit.kind, at=now, units=units)
    outcome.remaining[limit.kind] = max(0, limit.limit - used - units)


def _spend_fixed(service: str, limit: Limit, units: int, outcome: Outcome) -> None:
    number, resets_in = _window(limit)
    outcome.resets_in[limit.kind] = resets_in
    keys = {"service": service, "scope": limit.scope, "kind": limit.kind, "window_start": number}
    rows = RateWindow.objects.filter(**keys, used__lte=limit.limit - units)
    if not rows.update(used=F("used") + units):
        # No row with room: either the window is new or it is full. Try to open it; a conflict
        # means another caller opened it meanwhile, so try the conditional update once more.
        if units > limit.limit:
            outcome.allowed, outcome.tripped = False, limit
            raise _Rejected
        try:
            with transaction.atomic():
                RateWindow.objects.create(**keys, used=units)
        except IntegrityError:
            if not rows.update(used=F("used") + units):
                outcome.allowed, outcome.tripped = False, limit
                raise _Rejected from None
    used = RateWindow.objects.filter(**keys).values_list("used", flat=True).first() or 0
    outcome.remaining[limit.kind] = max(0, limit.limit - used)


def spend(service: str, limits: list[Limit], units: int = 1) -> Outcome:
    """Spend ``units`` in every window of ``limits``, all or nothing."""
    outcome = Outcome(allowed=True)
    now = clock.now()
    try:
        with transaction.atomic():
            for limit in limits:
                if limit.rolling:
                    _spend_rolling(service, limit, units, outcome, now)
                else:
                    _spend_fixed(service, limit, units, outcome)
    except _Rejected:
        outcome.remaining = {lim.kind: _remaining(service, lim, now) for lim in limits}
    return outcome


def _remaining(service: str, limit: Limit, now: dt.datetime) -> int:
    if limit.rolling:
        return max(0, limit.limit - _rolling_state(service, limit, now)[0])
    number, _ = _window(limit)
    used = (
        RateWindow.objects.filter(service=service, scope=limit.scope, kind=limit.kind, window_start=number)
        .values_list("used", flat=True)
        .first()
    )
    return max(0, limit.limit - (used or 0))


def _resets_in(service: str, limit: Limit, now: dt.datetime) -> int:
    return _rolling_state(service, limit, now)[1] if limit.rolling else _window(limit)[1]


def remaining(service: str, limits: list[Limit]) -> Outcome:
    """What is left in each window, spending nothing."""
    now = clock.now()
    return Outcome(
        allowed=True,
        remaining={lim.kind: _remaining(service, lim, now) for lim in limits},
        resets_in={lim.kind: _resets_in(service, lim, now) for lim in limits},
    )


def reset(service: str | None = None) -> None:
    for model in (RateWindow, RateEvent):
        rows = model.objects.all()
        if service:
            rows = rows.filter(service=service)
        rows.delete()
