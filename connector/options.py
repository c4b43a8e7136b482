"""A sync pair's options: one typed, validated object read everywhere options are used.

``SyncPair.options`` is stored as JSON so that an option can be added without a migration; this module
is the only place that knows each option's type, default and allowed values. Reading never crashes on a
bad stored value: the default is used and the problem is reported (``PairOptions.problems``), so the
admin can show it and the sync keeps going.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

DEAL_VALUE_FROM = ("Total", "AmountDue")
ARCHIVED_RULES = ("mark", "clear", "leave")
ON_PIPEDRIVE_DELETE = ("flag", "drop")
DEFAULT_DEAL_TITLE = "{InvoiceNumber} · {Contact.Name}"
DEFAULT_OVERDUE_CHECK_AT = "06:00"
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def clock_time_problem(value: str) -> str | None:
    """Why ``value`` is not a 24-hour time written HH:MM (None when it is)."""
    if _CLOCK_TIME.match(value.strip()):
        return None
    return f"{value!r} is not a time of day written HH:MM (24-hour, e.g. 06:00 or 18:30)"


def clock_time(value: str) -> dt.time:
    """The time of day of a valid HH:MM text (see ``clock_time_problem``)."""
    hours, minutes = value.strip().split(":")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class PairOptions:
    """The options of one sync pair, with their defaults (see the README's options table)."""

    # which invoice amount becomes the deal's value
    deal_value_from: str = "Total"
    # the deal title: invoice source paths in braces
    deal_title_template: str = DEFAULT_DEAL_TITLE
    # false: existing deals are kept up to date, no new deal is made
    create_deals: bool = True
    # one note per payment on the deal
    create_notes: bool = True
    # archived or GDPR-request contacts: mark the organization, clear its fields, or leave it
    archived_contacts: str = "mark"
    # a Pipedrive organization field key holding credit limits ("" = the connector's credit limit rows)
    credit_limit_field: str = ""
    # a linked record deleted in Pipedrive: keep the link flagged, or drop it
    on_pipedrive_delete: str = "flag"
    # alert when a webhook source is silent this long while changes are expected (0 = never)
    webhook_silence_alert_hours: int = 24
    # minutes between reconciliations (0 = no reconciliation schedule)
    reconciliation_interval_minutes: int = 15
    # no webhooks: reconciliation alone keeps Pipedrive level
    reconciliation_only: bool = False
    # the daily overdue check starts at or after this local time (HH:MM, the Xero organisation's zone)
    overdue_check_at: str = DEFAULT_OVERDUE_CHECK_AT
    # one Pipedrive activity for the deal's owner per invoice that falls overdue
    overdue_reminders: bool = False
    # what was wrong with the stored values (each replaced by its default)
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_raw(cls, raw: Any) -> PairOptions:
        """Options from stored JSON: unknown keys and bad values are reported and replaced by defaults."""
        values, problems = parse(raw)
        return cls(**values, problems=tuple(problems))

    def to_raw(self) -> dict[str, Any]:
        """The JSON to store (every option, so the stored row shows what is in force)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "problems"}


CHOICES: dict[str, tuple[str, ...]] = {
    "deal_value_from": DEAL_VALUE_FROM,
    "archived_contacts": ARCHIVED_RULES,
    "on_pipedrive_delete": ON_PIPEDRIVE_DELETE,
}
# Bounds of the numeric options (inclusive).
BOUNDS: dict[str, tuple[int, int]] = {
    "webhook_silence_alert_hours": (0, 24 * 30),
    "reconciliation_interval_minutes": (0, 24 * 60),
}


def option_names() -> list[str]:
    return [f.name for f in dataclasses.fields(PairOptions) if f.name != "problems"]


def parse(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """(valid values by name, problems). Missing options are left out (the defaults apply)."""
    if raw in (None, ""):
        return {}, []
    if not isinstance(raw, dict):
        return {}, [f"Options must be a JSON object, not {type(raw).__name__}; the defaults are used."]
    defaults = PairOptions()
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name not in option_names():
            problems.append(f"Unknown option {name!r} is ignored.")
            continue
        problem = _check(name, value, getattr(defaults, name))
        if problem:
            problems.append(f"{name}: {problem}; the default {getattr(defaults, name)!r} is used.")
        else:
            values[name] = value.strip() if isinstance(value, str) else value
    return values, problems


def _check(name: str, value: Any, default: Any) -> str | None:
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{value!r} is not true or false"
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{value!r} is not a whole number"
        low, high = BOUNDS[name]
        return None if low <= value <= high else f"{value} is not between {low} and {high}"
    if not isinstance(value, str):
        return f"{value!r} is not text"
    if name in CHOICES and value not in CHOICES[name]:
        return f"{value!r} is not one of {', '.join(CHOICES[name])}"
    if name == "overdue_check_at":
        return clock_time_problem(value)
    if name == "deal_title_template" and not value.strip():
        return "the title template is empty"
    return None


def pair_options(pair) -> PairOptions:
    """The typed options of ``pair`` (a SyncPair)."""
    return PairOptions.from_raw(pair.options)
