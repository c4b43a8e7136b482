"""Fault switches: read and set per service, and the per-call injection both emulators use."""

import random
import time
from collections.abc import Callable

from django.http import HttpResponse

from sandbox.models import FaultSwitch

FIELDS = {f.name for f in FaultSwitch._meta.get_fields()} - {"id", "service", "updated_at"}

_random = random.Random()  # noqa: S311 (fault injection, not security)


def get(service: str) -> FaultSwitch:
    """The service's switches (an unsaved all-off row when none were ever set)."""
    return FaultSwitch.objects.filter(service=service).first() or FaultSwitch(service=service)


def set_faults(service: str, **values) -> FaultSwitch:
    unknown = set(values) - FIELDS
    if unknown:
        raise ValueError(
            f"unknown fault switches: {', '.join(sorted(unknown))}; known: {', '.join(sorted(FIELDS))}"
        )
    switch, _ = FaultSwitch.objects.update_or_create(service=service, defaults=values)
    return switch


def reset(service: str | None = None) -> None:
    rows = FaultSwitch.objects.all()
    if service:
        rows = rows.filter(service=service)
    rows.delete()


def roll(rate: float) -> bool:
    return rate > 0 and _random.random() < rate


def inject(switch: FaultSwitch, error_response: Callable[[int, str], HttpResponse]) -> HttpResponse | None:
    """Apply latency, then maybe answer with an injected fault instead of the real call.

    ``error_response(status, message)`` builds the service's own error shape, so an
    injected 503 looks like the service's 503. Returns None when the call goes ahead.
    """
    if switch.latency_ms:
        time.sleep(switch.latency_ms / 1000)
    if roll(switch.timeout_rate):
        time.sleep(switch.timeout_seconds)
        return error_response(504, "Gateway timeout (sandbox fault: timeout)")
    if roll(switch.error_rate):
        status = _random.choice([500, 503])
        return error_response(status, f"Sandbox fault: injected {status}")
    if roll(switch.rate_limit_rate):
        response = error_response(429, "Sandbox fault: injected rate limit")
        response["Retry-After"] = "1"
        return response
    return None
