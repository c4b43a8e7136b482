"""Reading Xero values: source paths (``Addresses[STREET].City``) and conversions to text, numbers,
dates and money as Pipedrive takes them. Pure functions, no database, no HTTP."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from mapping.fields import VARCHAR_LIMIT

# --- source paths --------------------------------------------------------------------------------

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?$")


def parse_path(path: str) -> list[tuple[str, str | None]]:
    """``"Addresses[STREET].City"`` → ``[("Addresses", "STREET"), ("City", None)]``; ValueError if bad."""
    parts = []
    for segment in (path or "").strip().split("."):
        match = _SEGMENT.match(segment.strip())
        if not match:
            raise ValueError(f"Malformed source path {path!r} (at {segment!r}).")
        parts.append((match.group(1), match.group(2)))
    return parts


def _select(items: list, selector: str):
    selector = selector.strip()
    if selector.lstrip("-").isdigit():
        index = int(selector)
        return items[index] if -len(items) <= index < len(items) else None
    wanted = selector.casefold()
    for item in items:
        if isinstance(item, dict) and any(
            key.endswith("Type") and isinstance(value, str) and value.casefold() == wanted
            for key, value in item.items()
        ):
            return item
    return None


def resolve(record: dict, path: str):
    """The value at ``path`` in ``record``, or None when any step is missing."""
    current: Any = record
    for name, selector in parse_path(path):
        if not isinstance(current, dict):
            return None
        current = current.get(name)
        if selector is not None:
            if not isinstance(current, list):
                return None
            current = _select(current, selector)
    return current


# --- values --------------------------------------------------------------------------------------


def is_empty(value) -> bool:
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict) and is_address(value):
        return not address_line(value)
    return value is None or value == [] or value == {}


def trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip()


def is_address(value) -> bool:
    return isinstance(value, dict) and any(k in value for k in ("AddressType", "AddressLine1", "City"))


def address_line(address: dict) -> str:
    lines = [str(address.get(f"AddressLine{i}") or "").strip() for i in range(1, 5)]
    city_line = " ".join(
        part for part in (str(address.get(k) or "").strip() for k in ("City", "Region", "PostalCode")) if part
    )
    parts = [*lines, city_line, str(address.get("Country") or "").strip()]
    return ", ".join(part for part in parts if part)


def as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float | Decimal):
        return format(Decimal(str(value)).normalize(), "f") if value == value else ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if is_address(value):
        return address_line(value)
    if isinstance(value, list):
        return ", ".join(as_text(v).strip() for v in value if not is_empty(v))
    if isinstance(value, dict):
        return str(value.get("Name") or value.get("Value") or "")
    return "" if value is None else str(value)


def as_number(value, decimals=None):
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(value.strip().replace(",", "")) if isinstance(value, str) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    if decimals is not None:
        number = round(number, int(decimals))
    result = float(number)
    return result if math.isfinite(result) else None  # "1e400" is finite as a Decimal, not as JSON


def as_date(value) -> str | None:
    parsed = parse_xero_date(value)
    if parsed is None:
        return None
    return (parsed.date() if isinstance(parsed, dt.datetime) else parsed).isoformat()


_XERO_DATE = re.compile(r"^\\?/Date\((-?\d+)([+-]\d{2})?(\d{2})?\)\\?/$")


def parse_xero_date(value) -> dt.date | dt.datetime | None:
    """``/Date(1700000000000+0000)/`` (Unix milliseconds; the offset picks the local zone) or ISO text.

    ``/Date()/`` gives an aware datetime in the offset's zone (UTC without one), so ``.date()`` is the
    date the Xero user saw; ``2024-01-31`` gives a date; ISO date-times give datetimes."""
    if isinstance(value, dt.datetime | dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = _XERO_DATE.match(text)
    if match:
        millis, hours, minutes = match.groups()
        offset = dt.timedelta(0)
        if hours:
            sign = -1 if hours.startswith("-") else 1
            offset = sign * dt.timedelta(hours=abs(int(hours)), minutes=int(minutes or 0))
        try:
            moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(millis))
            return moment.astimezone(dt.timezone(offset))
        except (OverflowError, ValueError):
            return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


_CURRENCY_PATHS = ["CurrencyCode", "DefaultCurrency", "Connector.Currency"]


def currency_of(record: dict, options: dict) -> str | None:
    if options.get("currency"):
        return str(options["currency"]).upper()
    paths = (
        [options["currency_path"]] if options.get("currency_path") else ["CurrencyCode", "DefaultCurrency"]
    )
    for path in paths:
        value = resolve(record, path)
        if isinstance(value, str) and value.strip():
            return value.strip().upper()
    return None


def address_parts(address: dict) -> dict:
    parts = {
        "locality": address.get("City"),
        "admin_area_level_1": address.get("Region"),
        "postal_code": address.get("PostalCode"),
        "country": address.get("Country"),
    }
    return {k: trim(str(v), VARCHAR_LIMIT) for k, v in parts.items() if isinstance(v, str) and v.strip()}
