"""Writes to the sandbox Xero's accounting records, with Xero's validation and side effects.

Every write stamps ``updated_at`` with the sandbox clock and, once committed, tells the
webhook outbox (CONTACT, INVOICE or PAYMENT; CREATE or UPDATE).
"""

import datetime as dt
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction

from sandbox import clock, webhooks
from sandbox.xero.models import Contact, CreditNote, CreditNoteAllocation, Invoice, Organisation, Payment

CENT = Decimal("0.01")
# NZ GST, the demo organisations' tax; zero-rated types carry no tax.
TAX_RATES = {"NONE": Decimal("0"), "EXEMPTOUTPUT": Decimal("0"), "ZERORATEDOUTPUT": Decimal("0")}
DEFAULT_TAX_RATE = Decimal("0.15")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class ValidationError(Exception):
    """A request element Xero would refuse; ``messages`` become its ValidationErrors."""

    def __init__(self, *messages: str):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def emit_event(organisation: Organisation, category: str, event_type: str, resource_id) -> None:
    tenant, resource = str(organisation.tenant_id), str(resource_id)
    transaction.on_commit(lambda: webhooks.emit_xero_event(tenant, category, event_type, resource))


def parse_date(value, field: str) -> dt.date:
    """Xero accepts ``2024-05-01``, ``2024-05-01T00:00:00`` and ``/Date(ms+0000)/``."""
    if isinstance(value, str):
        if match := _MS_DATE.match(value):
            try:
                return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, tz=dt.UTC).date()
            except (OverflowError, OSError, ValueError):
                raise ValidationError(f"{field} is not a valid date") from None
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise ValidationError(f"{field} is not a valid date")


# The largest amount the sandbox stores (14 digits, 2 decimals), as Xero's own limits are near it.
MAX_AMOUNT = Decimal("999999999999")


def _decimal(value, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(f"{field} must be a number")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{field} must be a number") from None
    if not number.is_finite() or abs(number) > MAX_AMOUNT:
        raise ValidationError(f"{field} must be a number between -{MAX_AMOUNT} and {MAX_AMOUNT}")
    return number


def _text(data: dict, key: str, max_length: int) -> str:
    """A string field of a request element ("" when null); Xero refuses other types and long values."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string")
    if len(value) > max_length:
        raise ValidationError(f"{key} must be {max_length} characters or less")
    return value


def _object(data: dict, key: str) -> dict:
    """A nested object of a request element ({} when absent or null)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{key} must be an object")
    return value


# Nested records as the accounting spec defines them (Address, Phone, ContactPerson, LineItemTracking):
# each key with its type; keys outside the spec are dropped (Xero ignores what it does not know).
NESTED_FIELDS = {
    "Addresses": {
        "AddressType": str,
        "AddressLine1": str,
        "AddressLine2": str,
        "AddressLine3": str,
        "AddressLine4": str,
        "City": str,
        "Region": str,
        "PostalCode": str,
        "Country": str,
        "AttentionTo": str,
    },
    "Phones": {"PhoneType": str, "PhoneNumber": str, "PhoneAreaCode": str, "PhoneCountryCode": str},
    "ContactPersons": {"FirstName": str, "LastName": str, "EmailAddress": str, "IncludeInEmails": bool},
    "Tracking": {"TrackingCategoryID": str, "TrackingOptionID": str, "Name": str, "Option": str},
}
NESTED_ENUMS = {
    ("Addresses", "AddressType"): {"POBOX", "STREET", "DELIVERY"},
    ("Phones", "PhoneType"): {"DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE"},
}


def _nested_list(value, key: str) -> list[dict]:
    """A list of nested records, type-checked against the spec, unknown keys dropped."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{key} must be a list")
    fields, cleaned = NESTED_FIELDS[key], []
    for item in value:
        if not isinstance(item, dict):
            raise ValidationError(f"Each of {key} must be an object")
        entry = {}
        for name, kind in fields.items():
            if item.get(name) is None:
                continue
            if not isinstance(item[name], kind) or (kind is not bool and isinstance(item[name], bool)):
                raise ValidationError(f"{key}.{name} must be a {'boolean' if kind is bool else 'string'}")
            if kind is str and len(item[name]) > 500:
                raise ValidationError(f"{key}.{name} must be 500 characters or less")
            allowed = NESTED_ENUMS.get((key, name))
            if allowed and item[name] not in allowed:
                raise ValidationError(f"{key}.{name} must be one of {', '.join(sorted(allowed))}")
            entry[name] = item[name]
        cleaned.append(entry)
    return cleaned


# --- contacts -------------------------------------------------------------------------------

CONTACT_FIELDS = {
    "Name": "name",
    "ContactNumber": "contact_number",
    "AccountNumber": "account_number",
    "FirstName": "first_name",
    "LastName": "last_name",
    "EmailAddress": "email_address",
    "CompanyNumber": "company_number",
    "TaxNumber": "tax_number",
    "DefaultCurrency": "default_currency",
}
CONTACT_LISTS = {"Phones": "phones", "Addresses": "addresses", "ContactPersons": "contact_persons"}


def _apply_contact(contact: Contact, data: dict) -> None:
    for key, attribute in CONTACT_FIELDS.items():
        if key in data:
            max_length = Contact._meta.get_field(attribute).max_length
            setattr(contact, attribute, _text(data, key, max_length + 100).strip()[:max_length])
    for key, attribute in CONTACT_LISTS.items():
        if key in data:
            setattr(contact, attribute, _nested_list(data[key], key))
    if "ContactStatus" in data:
        if data["ContactStatus"] not in Contact.Status.values:
            raise ValidationError(f"ContactStatus {data['ContactStatus']!r} is not valid")
        contact.status = data["ContactStatus"]
    errors = []
    if not contact.name:
        errors.append("The contact name must be specified.")
    elif len(contact.name) > 255:
        errors.append("The contact name must be 255 characters or less.")
    elif (
        Contact.objects.filter(organisation=contact.organisation, name__iexact=contact.name)
        .exclude(pk=contact.pk)
        .exists()
    ):
        errors.append(
            f"The contact name {contact.name} is already assigned to another contact. "
            "The contact name must be unique across all active contacts."
        )
    if errors:
        raise ValidationError(*errors)


def create_contact(organisation: Organisation, data: dict) -> Contact:
    contact = Contact(organisation=organisation, updated_at=clock.now())
    _apply_contact(contact, data)
    contact.save()
    emit_event(organisation, "CONTACT", "CREATE", contact.contact_id)
    return contact


def update_contact(contact: Contact, data: dict) -> Contact:
    _apply_contact(contact, data)
    contact.updated_at = clock.now()
    contact.save()
    emit_event(contact.organisation, "CONTACT", "UPDATE", contact.contact_id)
    return contact


def add_to_contact_group(contact: Contact, group_name: str) -> Contact:
    """Xero's ``PUT /ContactGroups/{id}/Contacts``: membership of a named group (no webhook: Xero sends
    none for group changes)."""
    if group_name not in contact.contact_groups:
        contact.contact_groups = [*contact.contact_groups, group_name]
        contact.save(update_fields=["contact_groups"])
    return contact


def find_contact(organisation: Organisation, data: dict, required: bool = True) -> Contact | None:
    """The contact a request element names by ContactID, ContactNumber or Name."""
    if not isinstance(data, dict):
        raise ValidationError("Contact must be an object")
    rows = Contact.objects.filter(organisation=organisation)
    for key in ("ContactNumber", "Name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValidationError(f"Contact {key} must be a string")
    if data.get("ContactID"):
        contact = rows.filter(contact_id=_uuid(data["ContactID"], "ContactID")).first()
        if not contact:
            raise ValidationError(f"Contact with ID {data['ContactID']} could not be found")
        return contact
    if data.get("ContactNumber") and (contact := rows.filter(contact_number=data["ContactNumber"]).first()):
        return contact
    if data.get("Name") and (contact := rows.filter(name__iexact=data["Name"]).first()):
        return contact
    if required:
        raise ValidationError("A Contact must be specified with this type of transaction")
    return None


def upsert_contact(organisation: Organisation, data: dict, contact_id=None) -> tuple[Contact, bool]:
    """POST /Contacts semantics: update the contact named by ID (or number/name), else create."""
    if contact_id:
        data = {**data, "ContactID": str(contact_id)}
    existing = find_contact(organisation, {k: data.get(k) for k in ("ContactID",)}, required=False)
    if existing:
        return update_contact(existing, data), False
    return create_contact(organisation, data), True


def _uuid(value, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not a valid identifier") from None


# --- invoices -------------------------------------------------------------------------------


def _line_items(items, line_amount_types: str) -> tuple[list[dict], Decimal, Decimal]:
    """Normalise line items and compute (items, sub total, total tax) as Xero rounds them."""
    if not isinstance(items, list):
        raise ValidationError("LineItems must be a list")
    normalised, sub_total, total_tax = [], Decimal("0"), Decimal("0")
    for item in items:
        if not isinstance(item, dict):
            raise ValidationError("Each line item must be an object")
        for key in ("Description", "ItemCode", "AccountCode", "TaxType", "LineItemID"):
            _text(item, key, 4000 if key == "Description" else 100)
        quantity = _decimal(item.get("Quantity", 1), "Quantity")
        unit = _decimal(item.get("UnitAmount", 0), "UnitAmount")
        if "LineAmount" in item and "UnitAmount" not in item:
            amount = _decimal(item["LineAmount"], "LineAmount").quantize(CENT, ROUND_HALF_UP)
        else:
            amount = (quantity * unit).quantize(CENT, ROUND_HALF_UP)
        tax_type = item.get("TaxType") or ("NONE" if line_amount_types == "NoTax" else "OUTPUT2")
        rate = Decimal("0") if line_amount_types == "NoTax" else TAX_RATES.get(tax_type, DEFAULT_TAX_RATE)
        if line_amount_types == "Inclusive":
            tax = (amount * rate / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
            sub_total += amount - tax
        else:
            tax = (amount * rate).quantize(CENT, ROUND_HALF_UP)
            sub_total += amount
        total_tax += tax
        normalised.append(
            {
                "LineItemID": item.get("LineItemID") or str(uuid.uuid4()),
                "Description": item.get("Description", ""),
                "Quantity": float(quantity),
                "UnitAmount": float(unit),
                "ItemCode": item.get("ItemCode", ""),
                "AccountCode": item.get("AccountCode", "200"),
                "TaxType": tax_type,
                "TaxAmount": float(tax),
                "LineAmount": float(amount),
                "Tracking": _nested_list(item.get("Tracking"), "Tracking"),
            }
        )
    return normalised, sub_total, total_tax


ALLOWED_TRANSITIONS = {
    "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"AUTHORISED", "VOIDED"},
    "PAID": {"PAID"},
    "DELETED": {"DELETED"},
    "VOIDED": {"VOIDED"},
}


def _apply_invoice(invoice: Invoice, data: dict, creating: bool) -> None:
    errors = []
    if creating or "Type" in data:
        if data.get("Type") not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be ACCREC or ACCPAY")
        else:
            invoice.type = data["Type"]
    if creating or "Contact" in data:
        invoice.contact = find_contact(invoice.organisation, _object(data, "Contact"))
    for key, attribute in (("Date", "date"), ("DueDate", "due_date")):
        if data.get(key):
            setattr(invoice, attribute, parse_date(data[key], key))
    if creating and not invoice.date:
        invoice.date = invoice.organisation.today()
    for key, attribute in (("Reference", "reference"), ("CurrencyCode", "currency_code")):
        if key in data:
            setattr(invoice, attribute, _text(data, key, Invoice._meta.get_field(attribute).max_length))
    if invoice.currency_code == "":
        invoice.currency_code = invoice.organisation.base_currency
    if "LineAmountTypes" in data:
        if data["LineAmountTypes"] not in ("Exclusive", "Inclusive", "NoTax"):
            errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
        else:
            invoice.line_amount_types = data["LineAmountTypes"]
    status = data.get("Status", invoice.status if not creating else "DRAFT")
    if status not in Invoice.Status.values or status == "PAID":
        errors.append(f"Invoice Status {status!r} cannot be set")
    elif status not in ALLOWED_TRANSITIONS[invoice.status if not creating else "DRAFT"]:
        errors.append(f"Invoice not of valid status for modification (from {invoice.status} to {status})")
    elif status == "VOIDED" and invoice.pk and invoice.payments.filter(status="AUTHORISED").exists():
        errors.append("Invoice cannot be voided while it has payments")
    if not creating and invoice.status in ("PAID", "VOIDED", "DELETED") and "LineItems" in data:
        errors.append("Invoice not of valid status for modification")
    if "LineItems" in data:
        if invoice.pk and invoice.amount_paid:
            errors.append("Line items cannot be changed on an invoice with payments")
        else:
            invoice.line_items, invoice.sub_total, invoice.total_tax = _line_items(
                data["LineItems"], invoice.line_amount_types
            )
            invoice.total = invoice.sub_total + invoice.total_tax
    if status in ("SUBMITTED", "AUTHORISED"):
        if not invoice.line_items:
            errors.append("At least one line item must be specified")
        if not invoice.due_date:
            errors.append("Due Date is required for an approved invoice")
    if data.get("InvoiceNumber") is not None:
        invoice.invoice_number = _text(data, "InvoiceNumber", 255)
    if invoice.type == "ACCREC" and invoice.invoice_number:
        clash = Invoice.objects.filter(
            organisation=invoice.organisation, type="ACCREC", invoice_number=invoice.invoice_number
        ).exclude(pk=invoice.pk)
        if clash.exists():
            errors.append("Invoice # must be unique.")
    if errors:
        raise ValidationError(*errors)
    invoice.status = status


def _next_invoice_number(organisation: Organisation) -> str:
    numbers = Invoice.objects.filter(organisation=organisation, invoice_number__startswith="INV-")
    highest = max(
        (int(n[4:]) for n in numbers.values_list("invoice_number", flat=True) if n[4:].isdigit()), default=0
    )
    return f"INV-{highest + 1:04d}"


def create_invoice(organisation: Organisation, data: dict) -> Invoice:
    invoice = Invoice(organisation=organisation, updated_at=clock.now(), date=None)
    _apply_invoice(invoice, data, creating=True)
    if invoice.type == "ACCREC" and not invoice.invoice_number:
        invoice.invoice_number = _next_invoice_number(organisation)
    invoice.save()
    emit_event(organisation, "INVOICE", "CREATE", invoice.invoice_id)
    return invoice


def update_invoice(invoice: Invoice, data: dict) -> Invoice:
    _apply_invoice(invoice, data, creating=False)
    invoice.updated_at = clock.now()
    invoice.save()
    emit_event(invoice.organisation, "INVOICE", "UPDATE", invoice.invoice_id)
    return invoice


def upsert_invoice(organisation: Organisation, data: dict, invoice_id=None) -> tuple[Invoice, bool]:
    invoice_id = invoice_id or data.get("InvoiceID")
    rows = Invoice.objects.filter(organisation=organisation)
    if invoice_id:
        invoice = rows.filter(invoice_id=_uuid(invoice_id, "InvoiceID")).first()
        if not invoice:
            raise ValidationError(f"Invoice with ID {invoice_id} could not be found")
        return update_invoice(invoice, data), False
    number = _text(data, "InvoiceNumber", 255) if data.get("Type", "ACCREC") == "ACCREC" else None
    if number and (invoice := rows.filter(type="ACCREC", invoice_number=number).first()):
        return update_invoice(invoice, data), False
    return create_invoice(organisation, data), True


# --- payments -------------------------------------------------------------------------------


def _recompute_paid(invoice: Invoice) -> None:
    """Amount paid and status from the invoice's live payments; the invoice changes too."""
    live = invoice.payments.filter(status=Payment.Status.AUTHORISED)
    invoice.amount_paid = sum((p.amount for p in live), Decimal("0"))
    invoice.amount_credited = sum((a.amount for a in invoice.credit_allocations.all()), Decimal("0"))
    if invoice.amount_due <= 0 and invoice.total > 0:
        invoice.status = Invoice.Status.PAID
        dates = [p.date for p in live] + [a.date for a in invoice.credit_allocations.all()]
        invoice.fully_paid_on = max(dates)
    elif invoice.status == Invoice.Status.PAID:
        invoice.status, invoice.fully_paid_on = Invoice.Status.AUTHORISED, None
    invoice.updated_at = clock.now()
    invoice.save()
    emit_event(invoice.organisation, "INVOICE", "UPDATE", invoice.invoice_id)


@transaction.atomic  # the invoice row is locked while its payments change
def create_payment(organisation: Organisation, data: dict) -> Payment:
    reference = _object(data, "Invoice")
    rows = Invoice.objects.select_for_update().filter(organisation=organisation)
    invoice = None
    if reference.get("InvoiceID"):
        invoice = rows.filter(invoice_id=_uuid(reference["InvoiceID"], "InvoiceID")).first()
    elif reference.get("InvoiceNumber"):
        invoice = rows.filter(invoice_number=_text(reference, "InvoiceNumber", 255)).first()
    errors = []
    if not invoice:
        errors.append("You must specify either an Invoice, Credit Note, Prepayment or Overpayment")
    account = _object(data, "Account")
    _text(account, "Code", 20)
    if not (account.get("Code") or account.get("AccountID")):
        errors.append("You must specify an Account for the payment")
    if "Amount" not in data:
        errors.append("You must specify a payment amount")
    if errors:
        raise ValidationError(*errors)
    amount = _decimal(data["Amount"], "Amount").quantize(CENT, ROUND_HALF_UP)
    if invoice.status != Invoice.Status.AUTHORISED:
        raise ValidationError("Payment cannot be applied to an invoice that is not AUTHORISED")
    if amount <= 0:
        raise ValidationError("Payment amount must be greater than zero")
    if amount > invoice.amount_due:
        raise ValidationError("Payment amount exceeds the amount outstanding on this document")
    payment = Payment.objects.create(
        organisation=organisation,
        invoice=invoice,
        account_code=account.get("Code") or "090",
        date=parse_date(data["Date"], "Date") if data.get("Date") else organisation.today(),
        amount=amount,
        reference=_text(data, "Reference", 255),
        updated_at=clock.now(),
    )
    emit_event(organisation, "PAYMENT", "CREATE", payment.payment_id)
    _recompute_paid(invoice)
    return payment


@transaction.atomic
def delete_payment(payment: Payment, data: dict) -> Payment:
    """POST /Payments/{id} {"Status": "DELETED"}: the only change Xero allows to a payment."""
    if (data or {}).get("Status") != "DELETED":
        raise ValidationError("Payments can only be deleted: send Status DELETED")
    if payment.status == Payment.Status.DELETED:
        raise ValidationError("This payment has already been deleted")
    payment.status = Payment.Status.DELETED
    payment.updated_at = clock.now()
    payment.save()
    emit_event(payment.organisation, "PAYMENT", "UPDATE", payment.payment_id)
    _recompute_paid(Invoice.objects.select_for_update().get(pk=payment.invoice_id))
    return payment


# --- credit notes ---------------------------------------------------------------------------

CREDIT_NOTE_STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED", "VOIDED"}


def _emit_credit_note(credit_note: CreditNote, event_type: str) -> None:
    # CREDITNOTE events carry the credit note's type and status (webhooks spec CreditNoteWebhookEvent).
    tenant, resource = str(credit_note.organisation.tenant_id), str(credit_note.credit_note_id)
    data = {"Type": credit_note.type, "Status": credit_note.status}
    transaction.on_commit(
        lambda: webhooks.emit_xero_event(tenant, "CREDITNOTE", event_type, resource, data=data)
    )


def _next_credit_note_number(organisation: Organisation) -> str:
    numbers = CreditNote.objects.filter(organisation=organisation, credit_note_number__startswith="CN-")
    highest = max(
        (int(n[3:]) for n in numbers.values_list("credit_note_number", flat=True) if n[3:].isdigit()),
        default=0,
    )
    return f"CN-{highest + 1:04d}"


def create_credit_note(organisation: Organisation, data: dict) -> CreditNote:
    """PUT /CreditNotes: a credit note for a contact, totalled from its line items like an invoice."""
    errors = []
    kind = data.get("Type")
    if kind not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
        errors.append("Credit note Type must be ACCRECCREDIT or ACCPAYCREDIT")
    status = data.get("Status", "DRAFT")
    if status not in CREDIT_NOTE_STATUSES - {"VOIDED"}:
        errors.append(f"Credit note Status {status!r} cannot be set")
    contact = find_contact(organisation, _object(data, "Contact"))
    line_amount_types = data.get("LineAmountTypes", "Exclusive")
    if line_amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
        line_amount_types = "Exclusive"
    items, sub_total, total_tax = _line_items(data.get("LineItems", []), line_amount_types)
    if status == "AUTHORISED" and not items:
        errors.append("At least one line item must be specified")
    if errors:
        raise ValidationError(*errors)
    credit_note = CreditNote.objects.create(
        organisation=organisation,
        contact=contact,
        type=kind,
        status=status,
        credit_note_number=_text(data, "CreditNoteNumber", 255) or _next_credit_note_number(organisation),
        reference=_text(data, "Reference", 255),
        line_amount_types=line_amount_types,
        date=parse_date(data["Date"], "Date") if data.get("Date") else organisation.today(),
        currency_code=_text(data, "CurrencyCode", 3) or organisation.base_currency,
        line_items=items,
        sub_total=sub_total,
        total_tax=total_tax,
        total=sub_total + total_tax,
        updated_at=clock.now(),
    )
    _emit_credit_note(credit_note, "CREATE")
    return credit_note


@transaction.atomic  # the invoice row is locked while its credit changes
def allocate_credit_note(credit_note: CreditNote, data: dict) -> CreditNoteAllocation:
    """PUT /CreditNotes/{id}/Allocations: apply part of the credit to an invoice of the same contact."""
    invoice_ref = _object(data, "Invoice")
    if not invoice_ref.get("InvoiceID"):
        raise ValidationError("You must specify an Invoice to allocate the credit note to")
    invoice = (
        Invoice.objects.select_for_update()
        .filter(
            organisation=credit_note.organisation, invoice_id=_uuid(invoice_ref["InvoiceID"], "InvoiceID")
        )
        .first()
    )
    if invoice is None:
        raise ValidationError(f"Invoice with ID {invoice_ref['InvoiceID']} could not be found")
    if "Amount" not in data:
        raise ValidationError("You must specify an Amount to allocate")
    amount = _decimal(data["Amount"], "Amount").quantize(CENT, ROUND_HALF_UP)
    errors = []
    if credit_note.status != CreditNote.Status.AUTHORISED:
        errors.append("Only an AUTHORISED credit note can be allocated")
    if invoice.status != Invoice.Status.AUTHORISED:
        errors.append("A credit note can only be allocated to an AUTHORISED invoice")
    if invoice.contact_id != credit_note.contact_id:
        errors.append("The invoice and the credit note must be for the same contact")
    if amount <= 0:
        errors.append("Amount must be greater than zero")
    elif amount > credit_note.remaining_credit:
        errors.append("Amount exceeds the remaining credit on the credit note")
    elif amount > invoice.amount_due:
        errors.append("Amount exceeds the amount due on the invoice")
    if errors:
        raise ValidationError(*errors)
    allocation = CreditNoteAllocation.objects.create(
        credit_note=credit_note,
        invoice=invoice,
        amount=amount,
        date=parse_date(data["Date"], "Date") if data.get("Date") else credit_note.organisation.today(),
    )
    if credit_note.remaining_credit <= 0:
        credit_note.status = CreditNote.Status.PAID
    credit_note.updated_at = clock.now()
    credit_note.save()
    _emit_credit_note(credit_note, "UPDATE")
    _recompute_paid(invoice)
    return allocation
