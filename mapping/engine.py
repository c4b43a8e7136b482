"""The pure mapping engine: Xero record dicts + mapping rules → Pipedrive v2 request bodies.

No database, no HTTP, no settings: everything comes in as arguments. Rules are any objects with the
attributes ``source_path, pipedrive_field, transform, transform_options, enabled, order`` (FieldMapping
rows qualify). ``context`` is merged into the record under ``"Connector"`` so rules can read values the
sync computes (``Connector.AvailableCredit``, ``Connector.CreditLimit``, ``Connector.OverCreditLimit``,
``Connector.XeroUrl``).

Source paths are dotted names with list selectors: ``Addresses[STREET]`` (the entry whose ...Type is
STREET), ``Phones[MOBILE]``, ``ContactPersons[0]`` (by index), ``ContactGroups[0].Name``.

The transforms are described in ``mapping/transforms.py``; source paths and value conversions
live in ``mapping/values.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import string
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from mapping.fields import VARCHAR_LIMIT
from mapping.transforms import apply_rules, with_context
from mapping.values import as_number, as_text, is_empty, parse_path, parse_xero_date, resolve, trim

__all__ = [
    "Mapped",
    "is_overdue",
    "map_deal",
    "map_organization",
    "map_persons",
    "normalize_email",
    "normalize_org_name",
    "parse_path",
    "parse_xero_date",
    "payload_hash",
    "payment_state",
    "resolve",
    "stage_rule_for",
]

NAME_LIMIT = VARCHAR_LIMIT


@dataclass(frozen=True)
class Mapped:
    payload: dict  # Pipedrive v2 body: standard fields at top level, custom fields under "custom_fields"
    fields_mapped: list[str]  # Pipedrive field keys that received a value, in rule order


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
            return trim(" ".join(candidate.split()), NAME_LIMIT)
    contact_id = contact.get("ContactID")
    return f"Xero contact {contact_id}" if contact_id else "(no name in Xero)"


def map_organization(contact: dict, rules, context: dict | None = None) -> Mapped:
    """The organization body: ``name`` (Xero Name, else the person's name, e-mail, number) + rule fields."""
    record = with_context(contact, context)
    payload = {"name": _organization_name(record)}
    mapped = ["name"]
    apply_rules("organization", record, rules, payload, mapped)
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
        value = trim(" ".join(p for p in (country, _clean(phone.get("PhoneAreaCode")), number) if p), 255)
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
    record = with_context(contact, context)
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
        payload: dict = {"name": trim(name, NAME_LIMIT)}
        mapped = ["name"]
        if normalize_email(email):
            payload["emails"] = [{"value": trim(email, 255), "primary": True, "label": "work"}]
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
        apply_rules("person", source, rules, payload, mapped)
        if not payload.get("name"):
            payload["name"] = trim(name, NAME_LIMIT)
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
        return ("" if is_empty(value) else as_text(value)), field_name


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
    record = with_context(invoice, context)
    try:
        title = _PathFormatter().vformat(title_template, (), {"record": record})
    except (ValueError, IndexError, KeyError):
        title = ""
    title = trim(" ".join(title.split()).strip(_TITLE_EDGES), NAME_LIMIT)
    if not title:
        number = record.get("InvoiceNumber") or record.get("InvoiceID") or ""
        title = trim(f"Invoice {number}".strip(), NAME_LIMIT)
    payload: dict = {"title": title}
    mapped = ["title"]
    value = as_number(record.get(value_from))
    if value is not None:
        payload["value"] = value
        mapped.append("value")
    currency = record.get("CurrencyCode")
    if isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        payload["currency"] = currency.strip().upper()
        mapped.append("currency")
    apply_rules("deal", record, rules, payload, mapped)
    if not payload.get("title"):
        payload["title"] = title
    return Mapped(payload, mapped)


def payment_state(invoice: dict) -> str | None:
    """None, "PART_PAID" (something paid and AmountDue > 0) or "PAID" (paid in full; also an invoice
    Xero marks PAID with nothing paid in cash). Paid counts AmountPaid and AmountCredited (credit
    notes, prepayments and overpayments allocated to the invoice)."""
    paid = (as_number(invoice.get("AmountPaid")) or 0.0) + (as_number(invoice.get("AmountCredited")) or 0.0)
    due = as_number(invoice.get("AmountDue")) or 0.0
    if paid > 0 and due > 0:
        return "PART_PAID"
    if paid > 0 and due <= 0:
        return "PAID"
    if invoice.get("Status") == "PAID":
        return "PAID"
    return None


def is_overdue(invoice: dict, today: dt.date) -> bool:
    """An AUTHORISED invoice with an amount due whose due date is before ``today`` (the Xero
    organisation's local date: due dates are its calendar dates)."""
    if invoice.get("Status") != "AUTHORISED" or (as_number(invoice.get("AmountDue")) or 0.0) <= 0:
        return False
    due = parse_xero_date(invoice.get("DueDate") or invoice.get("DueDateString"))
    if isinstance(due, dt.datetime):
        due = due.date()
    return due is not None and due < today


def stage_rule_for(stage_rules, invoice_status: str, payment_state: str | None, overdue: bool = False):
    """The enabled rule that applies: the Overdue rule when the invoice is ``overdue`` (see
    ``is_overdue``) and the table has one; else a payment-state rule when the invoice is AUTHORISED/PAID
    and has a payment state with a rule, else the invoice-status rule; None if none."""
    enabled = [r for r in stage_rules or () if getattr(r, "enabled", True)]
    if overdue and invoice_status == "AUTHORISED":
        for rule in enabled:
            if rule.kind == "due_state" and rule.xero_value == "OVERDUE":
                return rule
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
