"""Checking Xero's webhook batches: the shape of every event, before anything is stored."""

import datetime as dt
from dataclasses import dataclass
from typing import Any


class InvalidBatch(ValueError):
    """A Xero batch that does not have Xero's shape; nothing of it is stored."""


@dataclass(frozen=True)
class XeroEvent:
    """One event of a Xero batch, checked."""

    tenant_id: str
    category: str
    resource_id: str
    event_type: str
    event_time: dt.datetime
    raw: dict


def _text(event: dict, name: str, index: int, max_length: int, required: bool = True) -> str:
    value = event.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
        raise InvalidBatch(f"events[{index}].{name} must be a string of 1 to {max_length} characters")
    return value.strip()


def parse_xero_time(value: str) -> dt.datetime:
    """eventDateUtc: UTC, written without a zone (``2024-06-21T01:15:39.902``); a zone is honoured."""
    moment = dt.datetime.fromisoformat(value)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse_xero_batch(payload: Any) -> list[XeroEvent]:
    """Check a decoded batch; an empty ``events`` list is Xero's intent-to-receive. Raises InvalidBatch."""
    if not isinstance(payload, dict):
        raise InvalidBatch("the body must be a JSON object")
    events = payload.get("events")
    if not isinstance(events, list):
        raise InvalidBatch("events must be a list")
    for name in ("firstEventSequence", "lastEventSequence"):
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidBatch(f"{name} must be a whole number")
    if payload.get("entropy") is not None and not isinstance(payload["entropy"], str):
        raise InvalidBatch("entropy must be a string")
    parsed = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidBatch(f"events[{index}] must be an object")
        when = _text(event, "eventDateUtc", index, 40)
        try:
            event_time = parse_xero_time(when)
        except (ValueError, OverflowError) as exc:
            raise InvalidBatch(f"events[{index}].eventDateUtc is not a date and time") from exc
        for optional in ("resourceUrl", "tenantType"):
            _text(event, optional, index, 2000, required=False)  # type check only; the URL is never used
        parsed.append(
            XeroEvent(
                tenant_id=_text(event, "tenantId", index, 64),
                category=_text(event, "eventCategory", index, 40).upper(),
                resource_id=_text(event, "resourceId", index, 64),
                event_type=_text(event, "eventType", index, 40).upper(),
                event_time=event_time,
                raw=event,
            )
        )
    return parsed
