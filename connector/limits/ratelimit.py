"""API limits shared by every worker process: fixed windows and concurrent-call slots.

The database backend uses atomic conditional UPDATEs (no read-modify-write), so any number
of processes can spend from the same window without overspending; Redis is used instead
when ``settings.REDIS_URL`` is set. Xero: per tenant at most 5 in flight, 60 a minute and
5,000 a day. Pipedrive: per token a 2-second burst window, per company a daily token budget.
A minute/burst limit makes the caller wait (bounded); a spent daily limit raises
BudgetExhausted so the work can be deferred to the reset.
"""

import contextlib
import datetime as dt
import logging
import math
import random
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Greatest

from connector.errors import BudgetExhausted, RateLimited
from connector.models import ApiRateWindow, ApiSlot

logger = logging.getLogger(__name__)

DAY = 86400


def now_dt() -> dt.datetime:
    return dt.datetime.fromtimestamp(time.time(), dt.UTC)


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass(frozen=True)
class Window:
    kind: str  # "minute", "day", "burst", "daily-tokens"
    seconds: float
    limit: int
    daily: bool = False  # spent => BudgetExhausted rather than a short wait
    sliding: bool = False  # weigh in the previous window (the service counts a rolling minute)


def _allowance(window: Window, now: float, previous_used: int) -> int:
    """Units the current window may hold: with ``sliding``, the previous window's share still in view.

    Fixed windows let a full window's tail and the next one's head add up to twice the limit
    within one rolling minute; the sliding-window estimate does not.
    """
    if not window.sliding:
        return window.limit
    _, left = _number(window, now)
    return window.limit - math.ceil(previous_used * left / window.seconds)


def _number(window: Window, now: float) -> tuple[int, float]:
    """(window number, seconds until it ends)."""
    number = int(now // window.seconds)
    return number, max(0.01, (number + 1) * window.seconds - now)


# The identifiers are the model's own (quoted as both SQLite and PostgreSQL read them); every value is a
# parameter.
ADD_WITHIN_ALLOWANCE = (
    f'UPDATE "{ApiRateWindow._meta.db_table}" SET "used" = "used" + %s'  # noqa: S608
    ' WHERE "service" = %s AND "scope" = %s AND "kind" = %s AND "window_start" = %s AND "used" <= %s'
    ' RETURNING "used"'
)


class DatabaseBackend:
    """Windows and slots as rows of ApiRateWindow / ApiSlot (works on SQLite and PostgreSQL).

    Every spend is one conditional ``UPDATE … RETURNING`` per window, outside any transaction: each
    statement is atomic on its own, so no caller overspends, and a spend over several windows that
    finds a later one full gives back what it took from the earlier ones (a moment's over-count, on
    the safe side). Without a transaction of its own a spend costs one statement, not the four of
    BEGIN, UPDATE, UPDATE, COMMIT, for each of the several API calls of every record's sync.

    One backend serves one limiter (one client, one sync run) and remembers, per window, the highest
    count it has seen there, so a service's ``*-Remaining`` header that tells nothing new (our own
    calls, already counted) costs no write; and the count of a finished window, which a sliding
    window reads on every spend."""

    def __init__(self):
        self.seen: dict[tuple, int] = {}  # (service, scope, kind, window number) -> highest count seen
        self.slots_ready: set[tuple] = set()  # (service, scope, limit) whose slot rows exist

    def _add(self, keys: dict, units: int, allowance: int) -> int | None:
        """Add ``units`` to the window's row if it stays within ``allowance``; the new count, or None
        (no row, or it would go over). RETURNING: Django's ``update()`` cannot give the new value."""
        values = [units, *(keys[k] for k in ("service", "scope", "kind", "window_start")), allowance - units]
        with connection.cursor() as cursor:
            cursor.execute(ADD_WITHIN_ALLOWANCE, values)
            row = cursor.fetchone()
        if row is None:
            return None
        self._saw(keys, int(row[0]))
        return int(row[0])

    def _saw(self, keys: dict, used: int) -> None:
        key = (keys["service"], keys["scope"], keys["kind"], keys["window_start"])
        self.seen[key] = max(self.seen.get(key, 0), used)

    def _previous_used(self, keys: dict) -> int:
        """The count of the window before (finished: read once per backend)."""
        key = ("previous", keys["service"], keys["scope"], keys["kind"], keys["window_start"])
        if key not in self.seen:
            before = ApiRateWindow.objects.filter(**{**keys, "window_start": keys["window_start"] - 1})
            self.seen[key] = before.values_list("used", flat=True).first() or 0
        return self.seen[key]

    def _charge(self, keys: dict, units: int, allowance: int) -> bool:
        if self._add(keys, units, allowance) is not None:
            return True
        if units > allowance:
            return False
        # No row yet (a new window), or a full one: open it (a no-op when it exists), then try again.
        ApiRateWindow.objects.bulk_create([ApiRateWindow(**keys, used=0)], ignore_conflicts=True)
        return self._add(keys, units, allowance) is not None

    def try_spend(self, service: str, scope: str, windows: list[Window], units: int) -> Window | None:
        """Spend ``units`` in every window, all or nothing; return the window that is full, if any."""
        now = time.time()
        charged: list[dict] = []
        for window in windows:
            number, _ = _number(window, now)
            keys = {"service": service, "scope": scope, "kind": window.kind, "window_start": number}
            previous = self._previous_used(keys) if window.sliding else 0
            if not self._charge(keys, units, _allowance(window, now, previous)):
                for earlier in charged:  # all or nothing: give back what the earlier windows took
                    ApiRateWindow.objects.filter(**earlier).update(used=F("used") - units)
                return window
            charged.append(keys)
        return None

    def used(self, service: str, scope: str, window: Window, moment: float | None = None) -> int:
        """Units spent in the window that holds ``moment`` (default now)."""
        number, _ = _number(window, time.time() if moment is None else moment)
        row = ApiRateWindow.objects.filter(
            service=service, scope=scope, kind=window.kind, window_start=number
        )
        return row.values_list("used", flat=True).first() or 0

    def raise_used(self, service: str, scope: str, window: Window, used: int) -> None:
        """The service says we used at least ``used`` (another app, another installation): never lower it.
        Nothing is written when this backend has already seen that much in the window."""
        number, _ = _number(window, time.time())
        keys = {"service": service, "scope": scope, "kind": window.kind, "window_start": number}
        if used <= self.seen.get((service, scope, window.kind, number), 0):
            return
        rows = ApiRateWindow.objects.filter(**keys)
        if not rows.update(used=Greatest(F("used"), used)):
            ApiRateWindow.objects.bulk_create([ApiRateWindow(**keys, used=used)], ignore_conflicts=True)
            rows.update(used=Greatest(F("used"), used))
        self._saw(keys, used)

    def try_acquire(self, service: str, scope: str, limit: int, lease: float) -> str | None:

        slots = ApiSlot.objects.filter(service=service, scope=scope, number__lt=limit)
        if (service, scope, limit) not in self.slots_ready:  # counted once per backend, not per call
            if slots.count() < limit:
                ApiSlot.objects.bulk_create(
                    [ApiSlot(service=service, scope=scope, number=n) for n in range(limit)],
                    ignore_conflicts=True,
                )
            self.slots_ready.add((service, scope, limit))
        holder = uuid.uuid4().hex
        now = now_dt()
        free = Q(holder="") | Q(expires_at__lt=now)  # an expired lease belonged to a killed worker
        for number in random.sample(range(limit), limit):
            taken = slots.filter(free, number=number).update(
                holder=holder, expires_at=now + dt.timedelta(seconds=lease)
            )
            if taken:
                return holder
        return None

    def release(self, service: str, scope: str, holder: str) -> None:

        ApiSlot.objects.filter(service=service, scope=scope, holder=holder).update(holder="", expires_at=None)


class RedisBackend:
    """The same operations on Redis: a Lua script makes spend-all-or-nothing atomic."""

    RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
    SPEND = """
    for i, key in ipairs(KEYS) do
      local used = tonumber(redis.call('GET', key) or '0')
      if used + tonumber(ARGV[1]) > tonumber(ARGV[1 + 2 * i - 1]) then return i end
    end
    for i, key in ipairs(KEYS) do
      redis.call('INCRBY', key, ARGV[1])
      redis.call('EXPIRE', key, ARGV[1 + 2 * i])
    end
    return 0
    """

    def __init__(self, url: str):
        import redis  # only with a Redis limiter configured: redis is an optional dependency

        self.redis = redis.Redis.from_url(url)
        self._spend = self.redis.register_script(self.SPEND)
        self._release = self.redis.register_script(self.RELEASE)

    def _key(self, service, scope, window: Window, now: float) -> str:
        return f"connector:rl:{service}:{scope}:{window.kind}:{_number(window, now)[0]}"

    def try_spend(self, service, scope, windows, units):
        now = time.time()
        keys = [self._key(service, scope, w, now) for w in windows]
        args = [units]
        for w in windows:
            previous = 0
            if w.sliding:
                previous = int(self.redis.get(self._key(service, scope, w, now - w.seconds)) or 0)
            args += [_allowance(w, now, previous), math.ceil(2 * w.seconds) + 5]
        index = int(self._spend(keys=keys, args=args))
        return windows[index - 1] if index else None

    def used(self, service, scope, window, moment=None):
        return int(
            self.redis.get(self._key(service, scope, window, time.time() if moment is None else moment)) or 0
        )

    def raise_used(self, service, scope, window, used):
        key = self._key(service, scope, window, time.time())
        current = int(self.redis.get(key) or 0)
        if used > current:
            self.redis.set(key, used, ex=math.ceil(window.seconds) + 5)

    def try_acquire(self, service, scope, limit, lease):
        holder = uuid.uuid4().hex
        for number in random.sample(range(limit), limit):
            if self.redis.set(
                f"connector:slot:{service}:{scope}:{number}", holder, nx=True, px=int(lease * 1000)
            ):
                return f"{number}:{holder}"
        return None

    def release(self, service, scope, holder):
        number, _, value = holder.partition(":")
        key = f"connector:slot:{service}:{scope}:{number}"
        # Compare-and-delete in one step: a lease that expired and was taken by another
        # worker between a GET and a DEL must not be freed by us.
        self._release(keys=[key], args=[value])


def backend():
    url = _setting("REDIS_URL", "")
    return RedisBackend(url) if url else DatabaseBackend()


class Limiter:
    """Limits for one scope of one service; ``call(units)`` is a context manager around each API call."""

    service = ""
    concurrent = 0  # 0: no slot needed

    def __init__(self, scope: str, backend_=None):
        self.scope = str(scope)
        self.backend = backend_ or backend()

    def windows(self, units: int) -> list[Window]:
        raise NotImplementedError

    def max_wait(self) -> float:
        return float(_setting("API_MAX_LIMIT_WAIT_SECONDS", 60))

    def resets_at(self, window: Window) -> dt.datetime:
        _, left = _number(window, time.time())
        return now_dt() + dt.timedelta(seconds=left)

    def spend(self, units: int = 1) -> None:
        """Spend, waiting (bounded) for short windows; a spent daily window raises BudgetExhausted."""
        waited = 0.0
        while True:
            windows = self.windows(units)
            full = self.backend.try_spend(self.service, self.scope, windows, units)
            if full is None:
                return
            if full.daily:
                raise BudgetExhausted(self.resets_at(full))
            _, left = _number(full, time.time())
            if full.sliding:
                left = min(left, full.seconds / 10)
            pause = left + random.uniform(0, 0.05 * full.seconds)  # noqa: S311 (jitter: do not all wake at once)
            if waited + pause > self.max_wait():
                raise RateLimited(left, f"{self.service} {full.kind} limit reached for {self.scope}")
            logger.info(
                "%s %s limit reached for %s: waiting %.1f s", self.service, full.kind, self.scope, pause
            )
            time.sleep(pause)
            waited += pause

    def remaining(self, kind: str) -> int:
        window = next(w for w in self.windows(1) if w.kind == kind)
        return max(0, window.limit - self.backend.used(self.service, self.scope, window))

    def room(self, kind: str) -> int:
        """Units that may be spent in the ``kind`` window right now without waiting: its allowance
        (for a sliding window, the limit less the previous window's share still in view) less what
        this window has spent. The drain reads this to decide between reading now and batching."""
        window = next(w for w in self.windows(1) if w.kind == kind)
        now = time.time()
        previous = (
            self.backend.used(self.service, self.scope, window, now - window.seconds) if window.sliding else 0
        )
        return max(
            0, _allowance(window, now, previous) - self.backend.used(self.service, self.scope, window, now)
        )

    def observe_remaining(self, kind: str, remaining: int) -> None:
        """Correct our count from the service's own ``*-Remaining`` header."""
        window = next((w for w in self.windows(1) if w.kind == kind), None)
        if window is not None:
            self.backend.raise_used(self.service, self.scope, window, max(0, window.limit - remaining))

    def exhaust(self, kind: str) -> dt.datetime:
        """The service says this window is spent (a 429 for it): mark it so, return its reset."""
        window = next(w for w in self.windows(1) if w.kind == kind)
        self.backend.raise_used(self.service, self.scope, window, window.limit)
        return self.resets_at(window)

    @contextlib.contextmanager
    def call(self, units: int = 1, timeout: float = 30.0):
        self.spend(units)
        holder = None
        if self.concurrent:
            holder = self._acquire(timeout)
        try:
            yield
        finally:
            if holder:
                self.backend.release(self.service, self.scope, holder)

    def _acquire(self, timeout: float) -> str:
        lease = timeout + 30  # outlives the call; frees the slot if the worker is killed
        deadline = time.monotonic() + self.max_wait()
        pause = 0.02
        while True:
            holder = self.backend.try_acquire(self.service, self.scope, self.concurrent, lease)
            if holder:
                return holder
            if time.monotonic() > deadline:
                raise RateLimited(
                    1, f"{self.service}: {self.concurrent} calls already in flight for {self.scope}"
                )
            time.sleep(random.uniform(0, pause))  # noqa: S311 (polling a slot)
            pause = min(pause * 2, 0.5)


class XeroLimiter(Limiter):
    """Per tenant: 5 in flight, 60 a minute, 5,000 a day (settings for Xero's smaller tiers)."""

    service = "xero"

    def __init__(self, tenant_id: str, backend_=None):
        super().__init__(tenant_id, backend_)
        self.concurrent = int(_setting("XERO_CONCURRENT_LIMIT", 5))

    def windows(self, units):
        return [
            Window(
                "minute",
                float(_setting("XERO_MINUTE_SECONDS", 60)),
                int(_setting("XERO_MINUTE_LIMIT", 60)),
                sliding=True,
            ),
            Window("day", DAY, int(_setting("XERO_DAY_LIMIT", 5000)), daily=True),
        ]


class PipedriveLimiter(Limiter):
    """Per API/OAuth token a 2-second burst window; per company the daily token budget."""

    service = "pipedrive"

    def __init__(self, company_id: str, token_scope: str = "", backend_=None):
        super().__init__(company_id, backend_)
        self.token_scope = token_scope or f"company:{company_id}"

    def windows(self, units):
        return [Window("daily-tokens", DAY, int(_setting("PIPEDRIVE_DAILY_TOKENS", 30000)), daily=True)]

    def burst_window(self) -> Window:
        return Window(
            "burst", float(_setting("PIPEDRIVE_BURST_SECONDS", 2)), int(_setting("PIPEDRIVE_BURST_LIMIT", 20))
        )

    def spend(self, units: int = 1) -> None:
        # The burst counts requests per token; the budget counts tokens per company.
        waited = 0.0
        window = self.burst_window()
        while (full := self.backend.try_spend(self.service, self.token_scope, [window], 1)) is not None:
            _, left = _number(full, time.time())
            if waited + left > self.max_wait():
                raise RateLimited(left, "Pipedrive burst limit reached")
            time.sleep(left)
            waited += left
        super().spend(units)

    def observe_burst_remaining(self, remaining: int) -> None:
        window = self.burst_window()
        self.backend.raise_used(self.service, self.token_scope, window, max(0, window.limit - remaining))


class NoLimiter(Limiter):
    """For tests and one-off scripts: no shared limits."""

    def __init__(self):
        self.scope = ""

    def spend(self, units=1):
        return None

    def windows(self, units):
        return []

    def observe_remaining(self, kind, remaining):
        return None

    def exhaust(self, kind):
        return now_dt()

    def observe_burst_remaining(self, remaining):
        return None
