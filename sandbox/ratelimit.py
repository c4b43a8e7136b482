"""Rate limits shared by every process (database rows, serialised per limit).

A call spends units (1 for a Xero call, the operation's token cost for Pipedrive) in every
window that applies to it; if any window would overflow, nothing is spent and the caller
learns which limit tripped and when there is room again.

Two kinds of window, as the real services count:

- rolling (``Limit.rolling``): the units of the last ``seconds`` — Pipedrive's 2-second burst,
  Xero's minute, app minute and day (Xero's day is a rolling 24 hours per tenant, not a UTC
  day). Each call is a ``RateEvent`` row; the window's rows are locked through an anchor row
  so two processes never both take the last unit. One call's limits are locked, read and spent
  together (three queries for any number of limits); rows that left their window are deleted
  now and then, not on every call (the anchor's ``used`` holds when, in clock milliseconds).
- fixed: a window aligned to the clock (``RateWindow``, one row per window, conditional
  UPDATE) — Pipedrive's daily token budget and daily write count, which reset once a day.
"""

import datetime as dt
import functools
import math
import operator
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Min, Q, Sum

from sandbox import clock
from sandbox.models import RateEvent, RateWindow

# The RateWindow row that serialises the spenders of one rolling limit (window numbers are >= 0).
ANCHOR = -1
# Events that left their window are deleted at most this often (real seconds; or once a window).
PRUNE_EVERY_SECONDS = 60


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


def _window_filter(limit: Limit, now: dt.datetime) -> Q:
    return Q(scope=limit.scope, kind=limit.kind, at__gt=now - dt.timedelta(seconds=_length(limit)))


def _rolling_states(service: str, limits: list[Limit], now: dt.datetime) -> dict[Limit, tuple[int, int]]:
    """Each limit's (units used in its last window, real seconds until the oldest of them leaves it),
    read for every limit in one aggregate query."""
    if not limits:
        return {}
    aggregates = {}
    for number, limit in enumerate(limits):
        wanted = _window_filter(limit, now)
        aggregates[f"used_{number}"] = Sum("units", filter=wanted)
        aggregates[f"oldest_{number}"] = Min("at", filter=wanted)
    windows = functools.reduce(operator.or_, (_window_filter(limit, now) for limit in limits))
    totals = RateEvent.objects.filter(windows, service=service).aggregate(**aggregates)
    states = {}
    for number, limit in enumerate(limits):
        oldest = totals[f"oldest_{number}"]
        if oldest is None:
            states[limit] = (0, math.ceil(_length(limit)))
            continue
        leaves = oldest + dt.timedelta(seconds=_length(limit)) - now
        states[limit] = (totals[f"used_{number}"] or 0, max(1, math.ceil(leaves.total_seconds())))
    return states


def _rolling_state(service: str, limit: Limit, now: dt.datetime) -> tuple[int, int]:
    """(units used in the last window, real seconds until the oldest of them leaves it)."""
    return _rolling_states(service, [limit], now)[limit]


def _anchor_keys(service: str, limit: Limit) -> Q:
    return Q(service=service, scope=limit.scope, kind=limit.kind, window_start=ANCHOR)


def _lock_rolling(service: str, limits: list[Limit]) -> dict[Limit, int]:
    """Lock the anchor rows of ``limits`` (one query once they exist; in a fixed order, so two
    callers never wait on each other crosswise); returns each anchor's last prune (clock ms)."""

    def locked() -> dict[tuple[str, str], int]:
        rows = RateWindow.objects.select_for_update().filter(
            functools.reduce(operator.or_, (_anchor_keys(service, limit) for limit in limits))
        )
        return {
            (scope, kind): used
            for scope, kind, used in rows.order_by("pk").values_list("scope", "kind", "used")
        }

    anchors = locked()
    missing = [limit for limit in limits if (limit.scope, limit.kind) not in anchors]
    if missing:
        for limit in missing:
            try:
                with transaction.atomic():
                    RateWindow.objects.create(
                        service=service, scope=limit.scope, kind=limit.kind, window_start=ANCHOR, used=0
                    )
            except IntegrityError:  # another process made it first
                pass
        anchors = locked()
    return {limit: anchors[(limit.scope, limit.kind)] for limit in limits}


def _prune(service: str, limits: list[Limit], pruned: dict[Limit, int], now: dt.datetime) -> None:
    """Delete the events that left a limit's window, at most once per ``PRUNE_EVERY`` (or window).

    Old rows never count (the window is read by time), so they only cost space; deleting them on every
    call cost two queries a call. The anchor's ``used`` holds when its limit was last pruned."""
    now_ms = int(now.timestamp() * 1000)
    for limit in limits:
        every_ms = 1000 * max(_length(limit), PRUNE_EVERY_SECONDS)
        if now_ms - pruned[limit] < every_ms:
            continue
        RateEvent.objects.filter(
            service=service,
            scope=limit.scope,
            kind=limit.kind,
            at__lte=now - dt.timedelta(seconds=_length(limit)),
        ).delete()
        RateWindow.objects.filter(_anchor_keys(service, limit)).update(used=now_ms)


def _spend_rolling(service: str, limits: list[Limit], units: int, outcome: Outcome, now: dt.datetime):
    """Check every rolling limit under its anchor's lock; the caller adds the events once all passed.

    Returns the events to add, or raises ``_Rejected`` naming the first limit (in order) that trips."""
    pruned = _lock_rolling(service, limits)
    _prune(service, limits, pruned, now)
    states = _rolling_states(service, limits, now)
    for limit in limits:
        used, resets_in = states[limit]
        outcome.resets_in[limit.kind] = resets_in
        if used + units > limit.limit:
            outcome.allowed, outcome.tripped = False, limit
            raise _Rejected
        outcome.remaining[limit.kind] = max(0, limit.limit - used - units)
    return [
        RateEvent(service=service, scope=limit.scope, kind=limit.kind, at=now, units=units)
        for limit in limits
    ]


def _spend_fixed(service: str, limit: Limit, units: int, outcome: Outcome) -> None:
    number, resets_in = _window(limit)
    outcome.resets_in[limit.kind] = resets_in
    keys = {"service": service, "scope": limit.scope, "kind": limit.kind, "window_start": number}
    used = _add_if_room(keys, units, limit.limit)
    if used is None:
        # No row with room: either the window is new or it is full. Try to open it; a conflict
        # means another caller opened it meanwhile, so try the conditional update once more.
        if units > limit.limit:
            outcome.allowed, outcome.tripped = False, limit
            raise _Rejected
        try:
            with transaction.atomic():
                RateWindow.objects.create(**keys, used=units)
            used = units
        except IntegrityError:
            used = _add_if_room(keys, units, limit.limit)
            if used is None:
                outcome.allowed, outcome.tripped = False, limit
                raise _Rejected from None
    outcome.remaining[limit.kind] = max(0, limit.limit - used)


def _add_if_room(keys: dict, units: int, limit: int) -> int | None:
    """Add ``units`` to the window's row if it has room; the row's new total, or None (no row, no room).

    One ``UPDATE … RETURNING`` where the database has it (PostgreSQL, SQLite ≥ 3.35), else an UPDATE
    and a read of the row it changed."""
    if not connection.features.can_return_columns_from_insert:
        rows = RateWindow.objects.filter(**keys, used__lte=limit - units)
        if not rows.update(used=F("used") + units):
            return None
        return RateWindow.objects.filter(**keys).values_list("used", flat=True).first() or 0
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    used_column = connection.ops.quote_name("used")
    where = " AND ".join(f"{connection.ops.quote_name(name)} = %s" for name in keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {used_column} = {used_column} + %s "  # noqa: S608 (names from the model)
            f"WHERE {where} AND {used_column} <= %s RETURNING {used_column}",
            [units, *keys.values(), limit - units],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def spend(service: str, limits: list[Limit], units: int = 1) -> Outcome:
    """Spend ``units`` in every window of ``limits``, all or nothing."""
    outcome = Outcome(allowed=True)
    now = clock.now()
    rolling = [limit for limit in limits if limit.rolling]
    try:
        with transaction.atomic():
            events = _spend_rolling(service, rolling, units, outcome, now) if rolling else []
            for limit in limits:
                if not limit.rolling:
                    _spend_fixed(service, limit, units, outcome)
            RateEvent.objects.bulk_create(events)
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


def remaining(service: str, limits: list[Limit]) -> Outcome:
    """What is left in each window, spending nothing."""
    now = clock.now()
    states = _rolling_states(service, [lim for lim in limits if lim.rolling], now)
    return Outcome(
        allowed=True,
        remaining={
            lim.kind: max(0, lim.limit - states[lim][0]) if lim.rolling else _remaining(service, lim, now)
            for lim in limits
        },
        resets_in={lim.kind: states[lim][1] if lim.rolling else _window(lim)[1] for lim in limits},
    )


def reset(service: str | None = None) -> None:
    for model in (RateWindow, RateEvent):
        rows = model.objects.all()
        if service:
            rows = rows.filter(service=service)
        rows.delete()
