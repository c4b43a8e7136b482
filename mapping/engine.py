"""The pure mapping engine: Xero record dicts + mapping rules → Pipedrive v2 request bodies.

No database, no HTTP, no settings: everything comes in as arguments. Rules are any objects with the
attributes ``source_path, pipedrive_field, transform, transform_options, enabled, order`` (FieldMapping
rows qualify). ``context`` is merged into the record under ``"Connector"`` so rules can read values the
sync computes (``Connector.AvailableCredit``, ``Connector.CreditLimit``, ``Connector.OverCreditLimit``,
``Connector.XeroUrl``).

Source paths are dotted names with list selectors: ``Addresses[STREET]`` (the entry whose ...Type is
STREET), ``Phones[MOBILE]``, ``ContactPersons[0]`` (by index), ``ContactGroups[0].Name``.

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

import datetime as dt
import hashlib
import json
import math
import re
import string
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mapping.fields import LIMITS, VARCHAR_LIMIT, is_custom_field_key, standard_field_type

__all__ = [
    "Mapped",
    "map_deal",
    "map_organization",
    "map_persons",
    "normalize_email",
    "normalize_org_name",
    "parse_xero_date",
    "payload_hash",
    "payment_state",
    "resolve",
    "stage_rule_for",
]

NAME_LIMIT = VARCHAR_LIMIT
EMPTY: tuple[Any, ...] = (None, "", [], {})


@dataclass(frozen=True)
class Mapped:
    payload: dict  # Pipedrive v2 body: standard fields at top level, custom fields under "custom_fields"
    fields_mapped: list[str]  # Pipedrive field keys that received a value, in rule order


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


def _is_empty(value) -> bool:
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict) and _is_address(value):
        return not _address_line(value)
    return value is None or value == [] or value == {}


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip()


def _is_address(value) -> bool:
    return isinstance(value, dict) and any(k in value for k in ("AddressType", "AddressLine1", "City"))


def _address_line(address: dict) -> str:
    lines = [str(address.get(f"AddressLine{i}") or "").strip() for i in range(1, 5)]
    city_line = " ".join(
        part for part in (str(address.get(k) or "").strip() for k in ("City", "Region", "PostalCode")) if part
    )
    parts = [*lines, city_line, str(address.get("Country") or "").strip()]
    return ", ".join(part for part in parts if part)


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float | Decimal):
        return format(Decimal(str(value)).normalize(), "f") if value == value else ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if _is_address(value):
        return _address_line(value)
    if isinstance(value, list):
        return ", ".join(_as_text(v).strip() for v in value if not _is_empty(v))
    if isinstance(value, dict):
        return str(value.get("Name") or value.get("Value") or "")
    return "" if value is None else str(value)


def _as_number(value, decimals=None):
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


def _as_date(value) -> str | None:
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


def _currency_of(record: dict, options: dict) -> str | None:
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
            values += [_as_text(v).strip() for v in items if not _is_empty(v)]
        return str(options.get("separator", ", ")).join(v for v in values if v) or None, None
    if kind == "first_non_empty":
        for path in _sources(rule, options):
            value = resolve(record, path)
            if not _is_empty(value):
                return _typed(value, field_type), value
        return None, None
    value = resolve(record, rule.source_path)
    return _convert(rule, kind, value, record, options), value


def _convert(rule, kind: str, value, record: dict, options: dict):
    if kind == "text":
        return _as_text(value) if not _is_empty(value) else None
    if kind == "number":
        return _as_number(value, options.get("decimals"))
    if kind == "money":
        amount = _as_number(value, options.get("decimals"))
        if amount is None:
            return None
        currency = _currency_of(record, options)
        return {"value": amount, "currency": currency} if currency else {"value": amount}
    if kind == "date":
        return _as_date(value)
    if kind == "lookup":
        table = options.get("table") or {}
        if not isinstance(table, dict):
            raise ValueError(f"Rule {_rule_label(rule)}: lookup option 'table' must be an object.")
        key = _as_text(value).strip()
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
        return _as_number(value)
    if field_type == "date":
        return _as_date(value)
    return _as_text(value)


def _shape(value, field_type: str | None, options: dict, source_value):
    """Fit the value to the Pipedrive field: length limits, address objects, e-mail/phone lists."""
    if isinstance(value, str):
        limit = int(options.get("max_length") or LIMITS.get(field_type or "", VARCHAR_LIMIT))
        value = _trim(value, limit)
        if not value:
            return None
        if field_type == "address":
            shaped = {"value": _trim(value, VARCHAR_LIMIT)}
            if _is_address(source_value):
                shaped.update(_address_parts(source_value))
            return shaped
        if field_type in ("emails", "phones"):
            return [{"value": value, "primary": True, "label": "work"}]
    return value


def _address_parts(address: dict) -> dict:
    parts = {
        "locality": address.get("City"),
        "admin_area_level_1": address.get("Region"),
        "postal_code": address.get("PostalCode"),
        "country": address.get("Country"),
    }
    return {k: _trim(str(v), VARCHAR_LIMIT) for k, v in parts.items() if isinstance(v, str) and v.strip()}


def _with_context(record: dict, context: dict | None) -> dict:
    record = dict(record) if isinstance(record, dict) else {}
    record["Connector"] = dict(context or {})
    return record


def _apply_rules(target: str, record: dict, rules, payload: dict, mapped: list[str]) -> None:
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


# --- organization --------------------------------------------------------------------------------


def _full_name(first, last) -> str:
    return " ".join(str(p).strip() for p in (first, last) if isinstance(p, str) and p.strip())


def _organization_name(contact: dict) -> str:
    for candidate in (
        contact.get("Name"),
        _full_name(contact.get("FirstName"), contact.get("LastName")),
        contact.get("EmailAddress"),
        contact.get("ContactNumber"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return _trim(" ".join(candidate.split()), NAME_LIMIT)
    contact_id = contact.get("ContactID")
    return f"Xero contact {contact_id}" if contact_id else "(no name in Xero)"


def map_organization(contact: dict, rules, context: dict | None = None) -> Mapped:
    """The organization body: ``name`` (Xero Name, else the person's name, e-mail, number) + rule fields."""
    record = _with_context(contact, context)
    payload = {"name": _organization_name(record)}
    mapped = ["name"]
    _apply_rules("organization", record, rules, payload, mapped)
    if not payload.get("name"):
        payload["name"] = _organization_name(record)  # a rule may not blank the required name
    return Mapped(payload, mapped)


# --- persons -------------------------------------------------------------------------------------


def _clean(value) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _name_key(name: str) -> str:
    name = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(name.split())


_PHONE_LABELS = {"MOBILE": "mobile", "DEFAULT": "work", "DDI": "work", "OFFICE": "work"}


def _phones(contact: dict) -> list[dict]:
    phones: list[dict] = []
    seen: set[str] = set()
    entries = [p for p in contact.get("Phones") or [] if isinstance(p, dict)]
    entries.sort(key=lambda p: 0 if p.get("PhoneType") == "DEFAULT" else 1)  # stable: DEFAULT first
    for phone in entries:
        kind = str(phone.get("PhoneType") or "DEFAULT").upper()
        if kind not in _PHONE_LABELS:
            continue  # FAX is not a phone to call
        number = _clean(phone.get("PhoneNumber"))
        if not number:
            continue
        country = _clean(phone.get("PhoneCountryCode"))
        if country and country[0].isdigit():
            country = f"+{country}"
        value = _trim(" ".join(p for p in (country, _clean(phone.get("PhoneAreaCode")), number) if p), 255)
        digits = re.sub(r"\D", "", value)
        if digits in seen:
            continue
        seen.add(digits)
        phones.append({"value": value, "primary": not phones, "label": _PHONE_LABELS[kind]})
    return phones


def _person_candidates(contact: dict) -> list[dict]:
    own = {k: contact.get(k) for k in ("FirstName", "LastName", "EmailAddress")}
    people = [
        p
        for p in contact.get("ContactPersons") or []
        if isinstance(p, dict)
        and (_full_name(p.get("FirstName"), p.get("LastName")) or normalize_email(p.get("EmailAddress")))
    ]
    if _full_name(own["FirstName"], own["LastName"]) or normalize_email(own["EmailAddress"]):
        return [{**own, "_own": True}, *people]
    primary = next((p for p in people if p.get("IncludeInEmails") is True), people[0] if people else None)
    if primary is None:
        return []
    return [primary, *[p for p in people if p is not primary]]


def person_key(person: dict) -> str | None:
    """The stable key of a person: the lower-cased e-mail, else "name:<normalized name>"."""
    email = normalize_email(person.get("EmailAddress"))
    if email:
        return email
    name = _full_name(person.get("FirstName"), person.get("LastName"))
    return f"name:{_name_key(name)}" if name else None


def map_persons(contact: dict, rules, context: dict | None = None) -> list[tuple[str, Mapped]]:
    """One (key, body) per person of the contact: its own person first (or the primary ContactPerson),
    then each further ContactPerson; same key merged; no org_id (the sync adds it)."""
    record = _with_context(contact, context)
    merged: dict[str, dict] = {}
    for candidate in _person_candidates(record):
        key = person_key(candidate)
        if key is None:
            continue
        if key in merged:  # same person twice: fill what the first lacked
            first = merged[key]
            for field in ("FirstName", "LastName", "EmailAddress"):
                if not _clean(first.get(field)) and _clean(candidate.get(field)):
                    first[field] = candidate[field]
            continue
        merged[key] = dict(candidate)
    result = []
    for index, (key, person) in enumerate(merged.items()):
        email = _clean(person.get("EmailAddress"))
        name = _full_name(_clean(person.get("FirstName")), _clean(person.get("LastName"))) or email
        payload: dict = {"name": _trim(name, NAME_LIMIT)}
        mapped = ["name"]
        if normalize_email(email):
            payload["emails"] = [{"value": _trim(email, 255), "primary": True, "label": "work"}]
            mapped.append("emails")
        if index == 0:
            phones = _phones(record)
            if phones:
                payload["phones"] = phones
                mapped.append("phones")
        source = record
        if not person.get("_own"):
            fields = ("FirstName", "LastName", "EmailAddress", "IncludeInEmails")
            source = {**record, **{f: person.get(f) for f in fields}}
        _apply_rules("person", source, rules, payload, mapped)
        if not payload.get("name"):
            payload["name"] = _trim(name, NAME_LIMIT)
        result.append((key, Mapped(payload, mapped)))
    return result


# --- deal ----------------------------------------------------------------------------------------


class _PathFormatter(string.Formatter):
    """``{InvoiceNumber}``, ``{Contact.Name}``: source paths; missing → empty."""

    def get_field(self, field_name, args, kwargs):
        try:
            value = resolve(kwargs["record"], field_name)
        except ValueError:
            value = None
        return ("" if _is_empty(value) else _as_text(value)), field_name


_TITLE_EDGES = " \t·-\u2013\u2014|:,/"  # separators left at an edge by missing values


def map_deal(
    invoice: dict,
    rules,
    context: dict | None = None,
    *,
    value_from: str = "Total",
    title_template: str = "{InvoiceNumber} · {Contact.Name}",
) -> Mapped:
    """The deal body: title (template over the invoice), value (Total or AmountDue), currency, rule fields.
    No org_id, stage_id or status: the sync adds them."""
    record = _with_context(invoice, context)
    try:
        title = _PathFormatter().vformat(title_template, (), {"record": record})
    except (ValueError, IndexError, KeyError):
        title = ""
    title = _trim(" ".join(title.split()).strip(_TITLE_EDGES), NAME_LIMIT)
    if not title:
        number = record.get("InvoiceNumber") or record.get("InvoiceID") or ""
        title = _trim(f"Invoice {number}".strip(), NAME_LIMIT)
    payload: dict = {"title": title}
    mapped = ["title"]
    value = _as_number(record.get(value_from))
    if value is not None:
        payload["value"] = value
        mapped.append("value")
    currency = record.get("CurrencyCode")
    if isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        payload["currency"] = currency.strip().upper()
        mapped.append("currency")
    _apply_rules("deal", record, rules, payload, mapped)
    if not payload.get("title"):
        payload["title"] = title
    return Mapped(payload, mapped)


def payment_state(invoice: dict) -> str | None:
    """None, "PART_PAID" (something paid and AmountDue > 0) or "PAID" (paid in full; also an invoice
    Xero marks PAID with nothing paid in cash). Paid counts AmountPaid and AmountCredited (credit
    notes, prepayments and overpayments allocated to the invoice)."""
    paid = (_as_number(invoice.get("AmountPaid")) or 0.0) + (_as_number(invoice.get("AmountCredited")) or 0.0)
    due = _as_number(invoice.get("AmountDue")) or 0.0
    if paid > 0 and due > 0:
        return "PART_PAID"
    if paid > 0 and due <= 0:
        return "PAID"
    if invoice.get("Status") == "PAID":
        return "PAID"
    return None


def stage_rule_for(stage_rules, invoice_status: str, payment_state: str | None):
    """The enabled rule that applies: a payment-state rule when the invoice is AUTHORISED/PAID and has a
    payment state with a rule, else the invoice-status rule; None if none."""
    enabled = [r for r in stage_rules or () if getattr(r, "enabled", True)]
    if payment_state and invoice_status in ("AUTHORISED", "PAID"):
        for rule in enabled:
            if rule.kind == "payment_state" and rule.xero_value == payment_state:
                return rule
    for rule in enabled:
        if rule.kind == "invoice_status" and rule.xero_value == invoice_status:
            return rule
    return None


# --- hashing and normalizing ---------------------------------------------------------------------


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    raise TypeError(f"Cannot hash a {type(value).__name__}")


def payload_hash(payload: dict) -> str:
    """sha256 hex of canonical JSON (sorted keys, compact), so an unchanged payload is never re-sent."""
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Legal-form words written in several ways → one spelling.
_LEGAL_SUFFIXES = {
    "limited": "ltd",
    "ltd": "ltd",
    "incorporated": "inc",
    "inc": "inc",
    "corporation": "corp",
    "corp": "corp",
    "company": "co",
    "co": "co",
    "proprietary": "pty",
    "pty": "pty",
    "llc": "llc",
    "plc": "plc",
    "gmbh": "gmbh",
    "ag": "ag",
    "bv": "bv",
    "nv": "nv",
    "sarl": "sarl",
    "sa": "sa",
    "kk": "kk",
}
_DROPPED = str.maketrans("", "", ".'\u2019`")  # dropped, not spaced: "L.L.C." = "LLC", "O'Brien" = "OBrien"


def normalize_org_name(name: str) -> str:
    """A comparison key: "ACME Ltd" == "Acme Limited" == "acme limited." (NFKC, casefold, punctuation
    dropped, spaces collapsed, "&" = "and", legal suffixes in one spelling). Accents are kept."""
    if not isinstance(name, str):
        return ""
    text = unicodedata.normalize("NFKC", name).casefold().replace("&", " and ").translate(_DROPPED)
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZC" and not ch.isspace() else ch for ch in text)
    return " ".join(_LEGAL_SUFFIXES.get(word, word) for word in text.split())


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalize_email(email) -> str:
    """Stripped and casefolded; "" for blank or invalid."""
    if not isinstance(email, str):
        return ""
    text = unicodedata.normalize("NFKC", email).strip().casefold()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    return text if _EMAIL.match(text) else ""
