"""The sandbox's clock: real time, scaled for tests and benchmarks.

``SANDBOX_TIME_SCALE`` (default 1) shortens every sandbox duration: with 60, a Xero
"minute" limit window lasts one real second and a 30-minute token lasts 30 seconds.
``advance()`` moves the clock forward in this process, so tests can expire tokens
and roll windows without waiting.
"""

import datetime as dt

from django.conf import settings
from django.utils import timezone

_offset = dt.timedelta(0)


def scale() -> float:
    return float(getattr(settings, "SANDBOX_TIME_SCALE", 1.0)) or 1.0


def now() -> dt.datetime:
    return timezone.now() + _offset


def timestamp() -> float:
    return now().timestamp()


def duration(seconds: float) -> dt.timedelta:
    """A sandbox duration (say Xero's 30 minutes) as real time under the time scale."""
    return dt.timedelta(seconds=seconds / scale())


def advance(seconds: float) -> None:
    """Move the clock forward by ``seconds`` of real time (tests only)."""
    global _offset
    _offset += dt.timedelta(seconds=seconds)


def reset() -> None:
    global _offset
    _offset = dt.timedelta(0)
