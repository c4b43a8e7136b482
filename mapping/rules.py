"""Selectors over the mapping rows and their validation. Database only, no HTTP: the live Pipedrive field
list is passed in by the caller (connector.setup.pipedrive_fields fetches it)."""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.db.models import Q

from mapping.choices import IN_RECEIVABLES
from mapping.engine import parse_path
from mapping.fields import STANDARD_FIELDS, is_custom_field_key, standard_field_type, type_problem
from mapping.models import CreditLimit, FieldMapping, StageMapping, Transform

# Values the sync puts into the record under "Connector" (engine context).
_CONTEXT_KEYS = ["AvailableCredit", "CreditLimit", "OverCreditLimit", "XeroUrl", "Currency"]
CONNECTOR_PATHS = {
    target: [f"Connector.{k}" for k in _CONTEXT_KEYS] for target in ("organization", "person", "deal")
}


@functools.cache
def known_paths(target: str) -> frozenset[str]:
    """Source paths valid for ``target``, lists written ``Name[]`` (mapping/xero_paths.json + Connector.*)."""
    data = json.loads((Path(__file__).with_name("xero_paths.json")).read_text())
    return frozenset(data[target]) | frozenset(CONNECTOR_PATHS[target])


def _generic(path: str) -> str:
    return ".".join(f"{name}[]" if selector is not None else name for name, selector in parse_path(path))


def validate_source_path(target: str, path: str) -> None:
    """Raise ValidationError naming ``path`` when it is malformed or not a field of the Xero record."""
    if target not in STANDARD_FIELDS:
        raise ValidationError(f"Unknown target {target!r}.")
    try:
        generic = _generic(path)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    paths = known_paths(target)
    if generic in paths:
        return
    # A list may be read whole (join) or one entry at a time: "Phones" and "Phones[MOBILE]" both fine.
    if not generic.endswith("[]") and f"{generic}[]" in paths:
        return
    record = "Invoice" if target == "deal" else "Contact"
    near = sorted(p for p in paths if p.casefold() == generic.casefold())
    hint = f" Did you mean {near[0].replace('[]', '[…]')}?" if near else ""
    raise ValidationError(f"Unknown Xero source path {path!r}: not a field of a Xero {record}.{hint}")


def source_paths_of(source_path: str, transform: str, options: dict) -> list[str]:
    """Every path a rule reads: its own and, for join/first_non_empty, option ``sources``."""
    paths = [source_path] if source_path else []
    if transform in (Transform.JOIN, Transform.FIRST_NON_EMPTY):
        paths += [p for p in (options or {}).get("sources") or [] if isinstance(p, str)]
    if transform == Transform.MONEY and isinstance((options or {}).get("currency_path"), str):
        paths.append(options["currency_path"])
    return paths


def validate_options(transform: str, options) -> None:
    """The transform's options have the documented shape."""
    if not isinstance(options, dict):
        raise ValidationError("Transform options must be a JSON object.")
    if transform not in Transform.values:
        raise ValidationError(f"Unknown transform {transform!r}.")
    if transform == Transform.LOOKUP and not isinstance(options.get("table"), dict):
        raise ValidationError(
            'A lookup needs options {"table": {"Xero value": "Pipedrive value"}, "default": …}.'
        )
    if transform in (Transform.JOIN, Transform.FIRST_NON_EMPTY) and "sources" in options:
        sources = options["sources"]
        if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
            raise ValidationError('Option "sources" must be a list of Xero source paths.')
    if "max_length" in options and not _whole(options["max_length"], 1, None):
        raise ValidationError('Option "max_length" must be a positive whole number.')
    if "decimals" in options and not _whole(options["decimals"], 0, 10):
        raise ValidationError('Option "decimals" must be a whole number from 0 to 10.')
    currency = options.get("currency")
    if currency not in (None, "") and not (
        isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)
    ):
        raise ValidationError(
            f'Option "currency" must be a three-letter currency code (like NZD), not {currency!r}.'
        )
    if "separator" in options and not isinstance(options["separator"], str):
        raise ValidationError('Option "separator" must be text.')
    if "clear_when_empty" in options and not isinstance(options["clear_when_empty"], bool):
        raise ValidationError('Option "clear_when_empty" must be true or false.')


def _whole(value, low: int, high: int | None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def validate_field(target: str, key: str, transform: str, live_fields: list[dict] | None) -> dict:
    """Check the Pipedrive field exists and suits the transform; returns {key, name, field_type}.

    ``live_fields`` is the pair's live field list (None for a default row: standard fields only)."""
    key = (key or "").strip()
    standard = STANDARD_FIELDS[target].get(key)
    if live_fields is None:
        if standard is None:
            allowed = ", ".join(STANDARD_FIELDS[target])
            raise ValidationError(
                f"Default rows (no sync pair) may only target standard {target} fields ({allowed}); "
                f"{key!r} is not one. Choose a sync pair to map custom fields."
            )
        field = {"key": key, "name": standard[0], "field_type": standard[1]}
    else:
        by_key = {f["key"]: f for f in live_fields}
        live = by_key.get(key)
        if live:
            field = dict(live)
        elif standard is not None:
            field = {"key": key, "name": standard[0], "field_type": standard[1]}
        else:
            raise ValidationError(
                f"The Pipedrive {target} field {key!r} does not exist in this Pipedrive company "
                "(it may have been deleted): choose one from the list."
            )
        field["field_type"] = standard_field_type(target, key) or field.get("field_type") or ""
    problem = type_problem(transform, field["field_type"], f"{field['name']!r} ({key})")
    if problem:
        raise ValidationError(problem)
    return field


def validate_rule(target: str, source_path: str, key: str, transform: str, options, live_fields) -> dict:
    """All checks of one FieldMapping row; returns the Pipedrive field (key, name, field_type)."""
    validate_options(transform, options)
    for path in source_paths_of(source_path, transform, options):
        validate_source_path(target, path)
    return validate_field(target, key, transform, live_fields)


# --- selectors -----------------------------------------------------------------------------------


def field_rules(pair, target: str) -> list[FieldMapping]:
    """The pair's enabled rows for ``target`` if it has any rows for it, else the enabled default rows
    (one query: the pair's rows and the defaults together)."""
    rows = _pair_and_defaults(pair, FieldMapping.objects.filter(target=target).order_by("order", "id"))
    return _own_or_default(pair, list(rows))


def stage_rules(pair) -> list[StageMapping]:
    """Per kind (invoice status, payment state): the pair's enabled rows if it has any, else the defaults
    (one query for every kind)."""
    rows = list(_pair_and_defaults(pair, StageMapping.objects.order_by("id")))
    result = []
    for kind in StageMapping.Kind.values:
        result += _own_or_default(pair, [row for row in rows if row.kind == kind])
    return result


def _pair_and_defaults(pair, rows):
    if pair is None:
        return rows.filter(pair__isnull=True)
    return rows.filter(Q(pair=pair) | Q(pair__isnull=True))


def _own_or_default(pair, rows: list) -> list:
    """Of the pair's rows and the default rows (in order): the pair's if it has any, else the defaults;
    the enabled ones only."""
    own = [row for row in rows if pair is not None and row.pair_id == pair.pk]
    chosen = own or [row for row in rows if row.pair_id is None]
    return [row for row in chosen if row.enabled]


def credit_limit_for(pair, contact: dict, limits: list[CreditLimit] | None = None) -> Decimal | None:
    """The contact's own limit, else its contact group's (first group of the contact with a limit),
    else the pair's default; None when none is set. ``limits``: the pair's rows, when the caller has
    read them already (a sync run reads them once)."""
    if limits is None:
        limits = list(CreditLimit.objects.filter(pair=pair))
    contact_id = str(contact.get("ContactID") or "")
    if contact_id:
        for row in limits:
            if row.contact_id and row.contact_id == contact_id:
                return row.amount
    by_group = {row.contact_group.strip().casefold(): row for row in limits if row.contact_group.strip()}
    for group in contact.get("ContactGroups") or []:
        name = (group.get("Name") if isinstance(group, dict) else "") or ""
        group_row = by_group.get(name.strip().casefold())
        if group_row is not None:
            return group_row.amount
    for row in limits:
        if not row.contact_id and not row.contact_group:
            return row.amount
    return None


# --- engine context (what the sync passes as ``context``) ------------------------------------------

XERO_WEB = "https://go.xero.com"
# One DNS label: a Pipedrive company's subdomain (``acme`` of acme.pipedrive.com).
PIPEDRIVE_COMPANY_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def xero_url(kind: str, xero_id: str) -> str:
    """Link to the record in Xero's web app (built from the id, never taken from a payload)."""
    # Quoted: the id only ever fills one path segment or query value of the fixed host.
    xero_id = quote(str(xero_id or ""), safe="-")
    if kind == "invoice":
        return f"{XERO_WEB}/AccountsReceivable/View.aspx?InvoiceID={xero_id}"
    return f"{XERO_WEB}/Contacts/View/{xero_id}"


def is_pipedrive_company_label(value: str) -> bool:
    return bool(PIPEDRIVE_COMPANY_LABEL.match(value or ""))


def pipedrive_url(company_domain: str, path: str) -> str:
    """Link into the company's Pipedrive web app, or '' when the stored subdomain is not one label.

    Scheme and host are fixed here; only a validated label comes from the stored value, so a value
    such as ``javascript://…`` or ``evil.example/x`` never becomes a link.
    """
    label = (company_domain or "").strip().lower()
    if not is_pipedrive_company_label(label):
        return ""
    return f"https://{label}.pipedrive.com/{quote(path.lstrip('/'), safe='/')}"


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(str(value)) if value not in (None, "") and not isinstance(value, bool) else None
    except ArithmeticError:
        return None
    return number if number is not None and number.is_finite() else None


def contact_context(
    pair, contact: dict, limit: Decimal | None = None, limits: list[CreditLimit] | None = None
) -> dict:
    """The engine context of a contact (its organization and persons): XeroUrl, Currency (the contact's
    default), and when a credit limit applies CreditLimit, AvailableCredit (limit minus outstanding
    receivables) and OverCreditLimit (outstanding above the limit). With no limit, CreditLimit and
    AvailableCredit are empty (rules with ``clear_when_empty`` clear them) and OverCreditLimit is False
    ("No": no limit can be exceeded). ``limit`` overrides the connector's own credit limit rows (a limit
    read from a Pipedrive organization field); ``limits``: the pair's credit limit rows, when the caller
    has read them already."""
    context: dict[str, Any] = {"XeroUrl": xero_url("contact", contact.get("ContactID") or "")}
    if contact.get("DefaultCurrency"):
        context["Currency"] = contact["DefaultCurrency"]
    if limit is None:
        limit = credit_limit_for(pair, contact, limits=limits)
    if limit is not None:
        receivable = (contact.get("Balances") or {}).get("AccountsReceivable") or {}
        outstanding = _decimal(receivable.get("Outstanding")) or Decimal(0)
        context["CreditLimit"] = limit
        context["AvailableCredit"] = (limit - outstanding).quantize(Decimal("0.01"))
        context["OverCreditLimit"] = outstanding > limit
    else:
        context["OverCreditLimit"] = False
    return context


def over_credit(available: Decimal | None, deal_value, deal_open: bool) -> bool:
    """The deal value threshold: an open deal worth more than the customer's available credit.
    No limit (``available`` None) or a won/lost deal is never flagged."""
    value = _decimal(deal_value)
    if available is None or not deal_open or value is None:
        return False
    return value > Decimal(str(available))


# Invoice states whose AmountDue is part of the contact's outstanding receivables (approved, unpaid or
# part paid). DRAFT and SUBMITTED invoices are not receivables yet.


def credit_for_deal(available: Decimal | None, invoice: dict) -> Decimal | None:
    """The credit an invoice's deal is compared with: the available credit, plus the invoice's own
    AmountDue when the invoice is already in the outstanding (else it would be counted twice)."""
    if available is None:
        return None
    available = Decimal(str(available))
    if str(invoice.get("Status") or "").upper() in IN_RECEIVABLES:
        available += _decimal(invoice.get("AmountDue")) or Decimal(0)
    return available


def deal_context(contact_ctx: dict, invoice: dict, *, deal_value, deal_open: bool) -> dict:
    """The engine context of an invoice's deal: the contact's credit figures, the invoice's XeroUrl and
    currency, and OverCreditLimit for this deal: open and worth more than the credit left for it
    (``credit_for_deal``: available credit, plus the invoice's AmountDue when it is AUTHORISED)."""
    context = {k: v for k, v in contact_ctx.items() if k != "XeroUrl"}  # the contact's page, not the deal's
    context["XeroUrl"] = xero_url("invoice", invoice.get("InvoiceID") or "")
    if invoice.get("CurrencyCode") or context.get("Currency"):
        context["Currency"] = invoice.get("CurrencyCode") or context.get("Currency")
    limit_left = credit_for_deal(context.get("AvailableCredit"), invoice)
    context["OverCreditLimit"] = over_credit(limit_left, deal_value, deal_open)
    return context


__all__ = [
    "CONNECTOR_PATHS",
    "contact_context",
    "credit_for_deal",
    "credit_limit_for",
    "deal_context",
    "field_rules",
    "is_custom_field_key",
    "known_paths",
    "over_credit",
    "stage_rules",
    "validate_field",
    "validate_options",
    "validate_rule",
    "validate_source_path",
    "xero_url",
]
