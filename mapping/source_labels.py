"""The Xero source paths a rule may read, as a pick-list in finance's words.

Built from the spec-derived path list (mapping/xero_paths.json, lists written ``Name[]``) and the values
the connector computes (``Connector.*``): each list is offered by the entries finance means ("Address
(street)", "Phone (mobile)", "Contact person (first)") and each path gets a plain label such as
"Address (street) → City" or "Balances → Outstanding receivables". Pure data: no database, no HTTP.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from mapping.rules import CONNECTOR_PATHS

# Which entries of a Xero list are offered: (selector, words). The engine picks an entry by a ...Type
# value (Addresses[STREET]) or by position (ContactPersons[0]); other lists offer their first entry.
LIST_ENTRIES = {
    "Addresses": [("STREET", "street"), ("POBOX", "postal")],
    "InvoiceAddresses": [("STREET", "street"), ("POBOX", "postal")],
    "Phones": [("DEFAULT", "default"), ("MOBILE", "mobile"), ("DDI", "direct dial"), ("FAX", "fax")],
}
FIRST_ENTRY = [("0", "first")]

# A list's name → what one entry is called.
LIST_NOUNS = {
    "Addresses": "Address",
    "InvoiceAddresses": "Invoice address",
    "Phones": "Phone",
    "ContactPersons": "Contact person",
    "ContactGroups": "Contact group",
    "LineItems": "Line item",
    "Payments": "Payment",
    "CreditNotes": "Credit note",
    "Prepayments": "Prepayment",
    "Overpayments": "Overpayment",
    "SalesTrackingCategories": "Sales tracking category",
    "PurchasesTrackingCategories": "Purchases tracking category",
    "Tracking": "Tracking category",
    "Allocations": "Allocation",
}

# Field names whose split words would read badly.
WORDS = {
    "ContactID": "Xero ContactID",
    "InvoiceID": "Xero InvoiceID",
    "EmailAddress": "Email address",
    "PhoneNumber": "Number",
    "PhoneAreaCode": "Area code",
    "PhoneCountryCode": "Country code",
    "PhoneType": "Type (DEFAULT, MOBILE …)",
    "AddressType": "Type (STREET, POBOX)",
    "InvoiceAddressType": "Type (STREET, POBOX)",
    "AddressLine1": "Line 1",
    "AddressLine2": "Line 2",
    "AddressLine3": "Line 3",
    "AddressLine4": "Line 4",
    "PostalCode": "Postcode",
    "Region": "Region / state",
    "DueDate": "Due date",
    "CurrencyCode": "Currency",
    "DefaultCurrency": "Default currency",
    "IncludeInEmails": "Included in e-mails",
    "TaxNumber": "Tax number (GST/VAT/ABN)",
    "Website": "Website",
    "Contact": "Customer",
    "UpdatedDateUTC": "Last changed in Xero",
}

# Whole paths with their own label.
FULL_LABELS = {
    "Balances.AccountsReceivable.Outstanding": "Balances → Outstanding receivables",
    "Balances.AccountsReceivable.Overdue": "Balances → Overdue receivables",
    "Balances.AccountsPayable.Outstanding": "Balances → Outstanding payables",
    "Balances.AccountsPayable.Overdue": "Balances → Overdue payables",
    "Connector.CreditLimit": "Credit limit (kept by the connector)",
    "Connector.AvailableCredit": "Available credit (credit limit minus outstanding receivables)",
    "Connector.OverCreditLimit": "Over the credit limit (Yes/No)",
    "Connector.XeroUrl": "Link to the record in Xero",
    "Connector.Currency": "Currency (the invoice's, else the customer's default)",
}

# Technical parts of the records no finance mapping needs: left out of the pick-list (a typed path
# still works when it is valid).
HIDDEN = re.compile(
    r"(^|\.)(Attachments|ValidationErrors|Warnings|HasValidationErrors|HasErrors|HasAttachments|"
    r"StatusAttributeString|UpdatedDateUTCString|BrandingTheme|BrandingThemeID|MergedToContactID|"
    r"XeroNetworkKey|RepeatingInvoiceID|LineItemID|TaxBreakdown)(\[\])?($|\.)"
)

CONNECTOR_GROUP = "Computed by the connector"
MAIN_GROUP = {
    "organization": "Customer (Xero contact)",
    "person": "Customer (Xero contact; a contact person's own name and e-mail come first)",
    "deal": "Invoice",
}


def words(name: str) -> str:
    """``AmountDue`` → "Amount due" (or the name's own label)."""
    if name in WORDS:
        return WORDS[name]
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    first, *rest = spaced.split(" ")
    return " ".join([first, *(w if w.isupper() else w.lower() for w in rest)])


def _segments(generic: str) -> list[tuple[str, bool]]:
    return [(part[:-2], True) if part.endswith("[]") else (part, False) for part in generic.split(".")]


def _expand(generic: str) -> list[tuple[str, list[str]]]:
    """(concrete path, its label parts) for each entry a generic path stands for."""
    segments = _segments(generic)
    lists = [i for i, (_, is_list) in enumerate(segments) if is_list]
    if len(lists) > 1 or (lists and len(segments) - lists[0] > 2):
        return []  # lists within lists, objects within list entries: too deep for a pick-list
    results: list[tuple[str, list[str]]] = [("", [])]
    for index, (name, is_list) in enumerate(segments):
        last = index == len(segments) - 1
        grown = []
        for path, labels in results:
            prefix = f"{path}." if path else ""
            if not is_list:
                grown.append((prefix + name, [*labels, words(name)]))
                continue
            noun = LIST_NOUNS.get(name, words(name))
            for selector, entry_words in LIST_ENTRIES.get(name, FIRST_ENTRY):
                grown.append((f"{prefix}{name}[{selector}]", [*labels, f"{noun} ({entry_words})"]))
            if last:  # the whole list, for joins ("Contact group (all)")
                grown.append((prefix + name, [*labels, f"{noun} (all)"]))
        results = grown
    return results


def _is_container(generic: str, every: frozenset[str]) -> bool:
    """An object with fields of its own (Balances, PaymentTerms.Sales): its fields are offered instead."""
    return not generic.endswith("[]") and any(p.startswith(generic + ".") for p in every)


@functools.cache
def _xero_paths() -> dict:
    return json.loads(Path(__file__).with_name("xero_paths.json").read_text())


@functools.cache
def source_choices(target: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Grouped choices ``((group, ((path, label), …)), …)`` for ``target``: the record's own fields first,
    then the connector's computed values, then each list or object of the record by name."""
    every = frozenset(_xero_paths()[target])
    groups: dict[str, list[tuple[str, str]]] = {MAIN_GROUP[target]: [], CONNECTOR_GROUP: []}
    for path in CONNECTOR_PATHS[target]:
        groups[CONNECTOR_GROUP].append((path, FULL_LABELS.get(path, words(path.split(".")[1]))))
    for generic in sorted(every):
        if HIDDEN.search(generic) or _is_container(generic, every):
            continue
        for path, labels in _expand(generic):
            label = FULL_LABELS.get(path) or " → ".join(labels)
            nested = len(labels) > 1 or "[" in path or path.split("[")[0] in LIST_NOUNS
            group = labels[0].split(" (")[0] if nested else MAIN_GROUP[target]
            if target == "deal" and path.startswith("Contact."):
                group = "Customer (on the invoice)"
            elif path.startswith("Balances."):
                group = "Balances"
            groups.setdefault(group, []).append((path, label))
    first = [MAIN_GROUP[target], CONNECTOR_GROUP]
    ordered = [*first, *sorted(set(groups) - set(first))]
    return tuple((g, tuple(sorted(groups[g], key=lambda c: c[1].casefold()))) for g in ordered if groups[g])


def source_label(target: str, path: str) -> str:
    """The plain label of ``path`` (the path itself when the pick-list does not offer it)."""
    for _, options in source_choices(target):
        for value, label in options:
            if value == path:
                return label
    return path
