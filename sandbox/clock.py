"""The sandbox's clock: real time, moved for tests and benchmarks, scaled for them.

Two offsets move it, and ``now()`` adds both to real time:

- the **shared** offset, set from outside with ``POST /sandbox/_clock`` (``move_to``) so that due dates
  pass: it holds for every process of the run command (web server, django-q2 workers), so it is kept
  in a small file in the data folder (``DATA_DIR/sandbox-clock.json``), written atomically and read
  again only when the file changes (one ``stat`` a call). A file rather than the cache or a table:
  ``now()`` runs many times a request, and in tests that use no database;
- the **in-process** offset of ``advance()``, with which tests expire tokens and roll windows without
  waiting.

``SANDBOX_TIME_SCALE`` (default 1) shortens every sandbox duration: with 60, a Xero "minute" limit
window lasts one real second and a 30-minute token lasts 30 seconds.
"""

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

_offset = dt.timedelta(0)
# The shared offset as last read: (the file's inode, mtime and size, or None when there is none; offset).
_shared: tuple[tuple[int, int, int] | None, dt.timedelta] = (None, dt.timedelta(0))


class ClockError(ValueError):
    """A move the clock refuses (into the past, or not a time)."""


def scale() -> float:
    return float(getattr(settings, "SANDBOX_TIME_SCALE", 1.0)) or 1.0


def shared_clock_file() -> Path:
    return Path(settings.DATA_DIR) / "sandbox-clock.json"


def shared_offset() -> dt.timedelta:
    """The offset set with ``move_to`` by any process (zero when the clock was never moved)."""
    global _shared
    path = shared_clock_file()
    try:
        stat = path.stat()
    except FileNotFoundError:
        _shared = (None, dt.timedelta(0))
        return _shared[1]
    version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if version != _shared[0]:
        try:
            seconds = float(json.loads(path.read_text())["offset_seconds"])
        except FileNotFoundError:  # reset by another process between stat and read
            seconds = 0.0
        _shared = (version, dt.timedelta(seconds=seconds))
    return _shared[1]


def now() -> dt.datetime:
    return timezone.now() + _offset + shared_offset()


def timestamp() -> float:
    return now().timestamp()


def duration(seconds: float) -> dt.timedelta:
    """A sandbox duration (say Xero's 30 minutes) as real time under the time scale."""
    return dt.timedelta(seconds=seconds / scale())


def advance(seconds: float) -> None:
    """Move the clock forward by ``seconds`` of real time, in this process only (tests)."""
    global _offset
    _offset += dt.timedelta(seconds=seconds)


def _write_shared(offset: dt.timedelta) -> None:
    path = shared_clock_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"offset_seconds": offset.total_seconds(), "set_at": timezone.now().isoformat()})
    # Written beside the file and renamed over it: a reader sees the old offset or the new, never half.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".sandbox-clock-")
    with os.fdopen(fd, "w") as handle:
        handle.write(body)
    os.replace(temporary, path)


def move_to(moment: dt.datetime) -> dt.datetime:
    """Set the clock of every process to ``moment`` (aware); from there it runs on at real speed.

    The clock only moves forward: records, tokens and limit windows written "now" would otherwise
    lie in the future. ``reset_shared`` is the way back to real time."""
    if timezone.is_naive(moment):
        raise ClockError("the time needs a UTC offset or a time zone")
    current = now()
    if moment < current:
        raise ClockError(
            f"the sandbox clock only moves forward: it is {current.isoformat()} already; "
            'send {"reset": true} first to go back to real time'
        )
    _write_shared(moment - timezone.now() - _offset)
    return now()


def reset_shared() -> None:
    """Back to real time for every process (the in-process offset of ``advance`` stays)."""
    shared_clock_file().unlink(missing_ok=True)


def reset_local() -> None:
    """Forget this process's ``advance`` offset (the shared one set from outside stays)."""
    global _offset
    _offset = dt.timedelta(0)


def reset() -> None:
    """Back to real time: both offsets."""
    reset_local()
    reset_shared()


def state() -> dict:
    """What ``GET /sandbox/_clock`` answers."""
    moment, offset = now(), shared_offset() + _offset
    return {
        "now": moment.isoformat(),
        "date": moment.date().isoformat(),
        "offset_seconds": offset.total_seconds(),
        "moved": offset != dt.timedelta(0),
    }
