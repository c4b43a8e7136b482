"""Mapping rules applied to a Pipedrive body: each rule's transform, the value fitted to the field.

Transforms (the fixed set, see README "Mapping rules"):
- ``text``: the value as text, trimmed to the field's limit (255; ``text`` fields 65 000; option
  ``max_length``). A Xero address object becomes one line ("1 Queen St, Auckland 1010, New Zealand").
- ``number``: a JSON number (option ``decimals`` rounds).
- ``money``: ``{"value": n, "currency": "NZD"}`` for monetary custom fields; the currency comes from option
  ``currency`` (fixed), else option ``currency_path``, else the record's CurrencyCode / DefaultCurrency.
- ``date``: ``YYYY-MM-DD`` from ``/Date(ms±hhmm)/`` or ISO text.
- ``lookup``: option ``table`` maps the value (exact, then case-insensitive) to another; unmatched →
  option ``default`` when given, else nothing.
- ``join``: the non-empty values of option ``sources`` (paths; default: the rule's path, a list's items)
  joined with option ``separator`` (default ", ").
- ``first_non_empty``: the first non-empty value among option ``sources`` (default: the rule's path).
Every transform accepts option ``clear_when_empty`` (send null to clear the field when Xero has no
value; by default an empty value leaves the Pipedrive field alone) and ``field_type`` (the Pipedrive
field type, stored by the admin on save: it picks the length limit and the address shape).
"""

from __future__ import annotations

from typing import Any

from mapping.fields import LIMITS, VARCHAR_LIMIT, is_custom_field_key, standard_field_type
from mapping.values import (
    address_parts,
    as_date,
    as_number,
    as_text,
    currency_of,
    is_address,
    is_empty,
    resolve,
    trim,
)

EMPTY: tuple[Any, ...] = (None, "", [], {})


# --- rules ---------------------------------------------------------------------------------------


def _rule_label(rule) -> str:
    return f"{getattr(rule, 'source_path', '?')} → {getattr(rule, 'pipedrive_field', '?')}"


def _sources(rule, options) -> list[str]:
    sources = options.get("sources")
    if sources:
        if not isinstance(sources, list):
            raise ValueError(f"Rule {_rule_label(rule)}: option 'sources' must be a list of source paths.")
        return [str(s) for s in sources]
    return [rule.source_path]


def _transform(rule, record: dict, field_type: str | None):
    """(the rule's value for ``record`` before the limit and field shape or None, the Xero value used)."""
    options = rule.transform_options or {}
    if not isinstance(options, dict):
        raise ValueError(f"Rule {_rule_label(rule)}: transform options must be an object.")
    kind = rule.transform or "text"
    if kind == "join":
        values = []
        for path in _sources(rule, options):
            value = resolve(record, path)
            items = value if isinstance(value, list) else [value]
            values += [as_text(v).strip() for v in items if not is_empty(v)]
        return str(options.get("separator", ", ")).join(v for v in values if v) or None, None
    if kind == "first_non_empty":
        for path in _sources(rule, options):
            value = resolve(record, path)
            if not is_empty(value):
                return _typed(value, field_type), value
        return None, None
    value = resolve(record, rule.source_path)
    return _convert(rule, kind, value, record, options), value


def _convert(rule, kind: str, value, record: dict, options: dict):
    if kind == "text":
        return as_text(value) if not is_empty(value) else None
    if kind == "number":
        return as_number(value, options.get("decimals"))
    if kind == "money":
        amount = as_number(value, options.get("decimals"))
        if amount is None:
            return None
        currency = currency_of(record, options)
        return {"value": amount, "currency": currency} if currency else {"value": amount}
    if kind == "date":
        return as_date(value)
    if kind == "lookup":
        table = options.get("table") or {}
        if not isinstance(table, dict):
            raise ValueError(f"Rule {_rule_label(rule)}: lookup option 'table' must be an object.")
        key = as_text(value).strip()
        if key in table:
            return table[key]
        folded = {str(k).casefold(): v for k, v in table.items()}
        if key.casefold() in folded:
            return folded[key.casefold()]
        return options.get("default")
    raise ValueError(
        f"Rule {_rule_label(rule)}: unknown transform {kind!r} "
        "(known: text, number, money, date, lookup, join, first_non_empty)."
    )


def _typed(value, field_type):
    """first_non_empty keeps numbers and dates for number and date fields, text otherwise."""
    if field_type in ("double", "int"):
        return as_number(value)
    if field_type == "date":
        return as_date(value)
    return as_text(value)


def _shape(value, field_type: str | None, options: dict, source_value):
    """Fit the value to the Pipedrive field: length limits, address objects, e-mail/phone lists."""
    if isinstance(value, str):
        limit = int(options.get("max_length") or LIMITS.get(field_type or "", VARCHAR_LIMIT))
        value = trim(value, limit)
        if not value:
            return None
        if field_type == "address":
            shaped = {"value": trim(value, VARCHAR_LIMIT)}
            if is_address(source_value):
                shaped.update(address_parts(source_value))
            return shaped
        if field_type in ("emails", "phones"):
            return [{"value": value, "primary": True, "label": "work"}]
    return value


def with_context(record: dict, context: dict | None) -> dict:
    record = dict(record) if isinstance(record, dict) else {}
    record["Connector"] = dict(context or {})
    return record


def apply_rules(target: str, record: dict, rules, payload: dict, mapped: list[str]) -> None:
    active = sorted(
        (r for r in rules or () if getattr(r, "enabled", True)),
        key=lambda r: (getattr(r, "order", 0) or 0, getattr(r, "pk", None) or 0),
    )
    for rule in active:
        options = rule.transform_options or {}
        key = (rule.pipedrive_field or "").strip()
        if not key:
            continue
        field_type = standard_field_type(target, key) or (options.get("field_type") if options else None)
        value, source_value = _transform(rule, record, field_type)
        value = _shape(value, field_type, options, source_value)
        if value in EMPTY:
            if not options.get("clear_when_empty"):
                continue
            value = None
        custom = is_custom_field_key(key)
        if custom:
            payload.setdefault("custom_fields", {})[key] = value
        else:
            payload[key] = value
        if value is not None and key not in mapped:
            mapped.append(key)
