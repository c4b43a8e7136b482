"""Fixed-window limits shared by every process (database rows, atomic updates).

A call spends units (1 for a Xero call, the operation's token cost for Pipedrive) in
every window that applies to it; if any window would overflow, nothing is spent and
the caller learns which limit tripped and when it resets.
"""

import math
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F

from sandbox import clock
from sandbox.models import RateWindow


@dataclass(frozen=True)
class Limit:
    kind: str  # e.g. "minute", "day", "app-minute", "burst", "daily-tokens"
    scope: str  # what it counts for: a tenant id, "app", an API token
    seconds: float  # window length in sandbox seconds (scaled by the clock)
    limit: int


@dataclass
class Outcome:
    allowed: bool
    remaining: dict[str, int] = field(default_factory=dict)  # kind -> units left in the window
    resets_in: dict[str, int] = field(default_factory=dict)  # kind -> real seconds to the window's end
    tripped: Limit | None = None

    @property
    def retry_after(self) -> int:
        return self.resets_in[self.tripped.kind] if self.tripped else 0


class _Rejected(Exception):
    pass


def _window(limit: Limit) -> tuple[int, int]:
    """(window number, real seconds until it ends) for a limit at the current clock."""
    length = limit.seconds / clock.scale()
    now = clock.timestamp()
    number = int(now // length)
    return number, max(1, math.ceil((number + 1) * length - now))


def spend(service: str, limits: list[Limit], units: int = 1) -> Outcome:
    """Spend ``units`` in every window of ``limits``, all or nothing."""
    outcome = Outcome(allowed=True)
    try:
        with transaction.atomic():
            for limit in limits:
                number, resets_in = _window(limit)
                outcome.resets_in[limit.kind] = resets_in
                keys = {"service": service, "scope": limit.scope, "kind": limit.kind, "window_start": number}
                rows = RateWindow.objects.filter(**keys, used__lte=limit.limit - units)
                if not rows.update(used=F("used") + units):
                    # No row with room: either the window is new or it is full. Try to open
                    # it; a conflict means another caller opened it meanwhile, so try the
                    # conditional update once more before calling the window full.
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
    except _Rejected:
        outcome.remaining = {lim.kind: _remaining(service, lim) for lim in limits}
    return outcome


def _remaining(service: str, limit: Limit) -> int:
    number, _ = _window(limit)
    used = (
        RateWindow.objects.filter(service=service, scope=limit.scope, kind=limit.kind, window_start=number)
        .values_list("used", flat=True)
        .first()
    )
    return max(0, limit.limit - (used or 0))


def remaining(service: str, limits: list[Limit]) -> Outcome:
    """What is left in each window, spending nothing."""
    return Outcome(
        allowed=True,
        remaining={lim.kind: _remaining(service, lim) for lim in limits},
        resets_in={lim.kind: _window(lim)[1] for lim in limits},
    )


def reset(service: str | None = None) -> None:
    rows = RateWindow.objects.all()
    if service:
        rows = rows.filter(service=service)
    rows.delete()
