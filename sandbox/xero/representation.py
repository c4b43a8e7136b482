"""Sandbox Xero records as the API shows them: field names, .NET dates and computed balances."""

import datetime as dt
import uuid
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Q, Sum, When

from sandbox import clock
from sandbox.xero.models import Contact, CreditNoteAllocation, Invoice, Organisation, Payment

PHONE_TYPES = ["DDI", "DEFAULT", "FAX", "MOBILE"]
ADDRESS_TYPES = ["STREET", "POBOX"]
ZERO = Decimal("0")


def ms_date(value: dt.date | dt.datetime | None) -> str | None:
    """``/Date(1439434356790+0000)/``: Unix milliseconds, as Xero's JSON writes dates."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return f"/Date({int(value.timestamp() * 1000)}+0000)/"


def date_string(value: dt.date | None) -> str | None:
    return f"{value.isoformat()}T00:00:00" if value else None


def utc_string(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def envelope(app_name: str, key: str, items: list, pagination: dict | None = None) -> dict:
    body = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": app_name,
        "DateTimeUTC": ms_date(clock.now()),
    }
    if pagination is not None:
        body["pagination"] = pagination
    body[key] = items
    return body


def _money(value) -> float:
    return float(value or ZERO)


def balances(contacts: list[Contact]) -> dict[int, tuple[Decimal, Decimal]]:
    """Receivables per contact (outstanding, overdue) from its AUTHORISED ACCREC invoices and payments.

    Overdue: what is due on invoices whose due date is before the organisation's date today (the
    sandbox clock, in the organisation's time zone). Nothing is written when a due date passes, as in
    Xero: the invoice's UpdatedDateUTC stays and no webhook is sent."""
    due = F("total") - F("amount_paid") - F("amount_credited")
    amounts: dict[int, tuple[Decimal, Decimal]] = {}
    by_organisation: dict[int, list[int]] = {}
    organisations = {}
    for row in contacts:
        by_organisation.setdefault(row.organisation_id, []).append(row.pk)
        organisations[row.organisation_id] = row.organisation
    for organisation_id, ids in by_organisation.items():
        today = organisations[organisation_id].today()
        rows = (
            Invoice.objects.filter(contact__in=ids, type="ACCREC", status=Invoice.Status.AUTHORISED)
            .values("contact_id")
            .annotate(
                outstanding=Sum(due, output_field=DecimalField()),
                overdue=Sum(
                    Case(When(Q(due_date__lt=today), then=due), default=ZERO, output_field=DecimalField())
                ),
            )
        )
        amounts.update(
            {row["contact_id"]: (row["outstanding"] or ZERO, row["overdue"] or ZERO) for row in rows}
        )
    return amounts


def organisation(row: Organisation) -> dict:
    """GET /Organisation's element (xero_accounting.yaml ``Organisation``): what the sandbox keeps of
    an organisation, and Xero's values for a New Zealand company elsewhere."""
    return {
        "OrganisationID": str(row.tenant_id),
        "APIKey": "",
        "Name": row.name,
        "LegalName": row.name,
        "PaysTax": True,
        "Version": "NZ",
        "OrganisationType": "COMPANY",
        "BaseCurrency": row.base_currency,
        "CountryCode": "NZ",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "PAYMENTS",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(row.created_at),
        "OrganisationEntityType": "COMPANY",
        "Timezone": row.timezone,
        "ShortCode": "!" + row.tenant_id.hex[:5],
        "Edition": "BUSINESS",
        "Class": "PREMIUM",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


def customer_ids(contacts: list[Contact]) -> set[int]:
    ids = Invoice.objects.filter(contact__in=[c.pk for c in contacts], type="ACCREC").exclude(
        status__in=["DRAFT", "DELETED"]
    )
    return set(ids.values_list("contact_id", flat=True))


def contact(row: Contact, balance=None, is_customer=False, summary=False) -> dict:
    body = {
        "ContactID": str(row.contact_id),
        "ContactNumber": row.contact_number or None,
        "AccountNumber": row.account_number or None,
        "ContactStatus": row.status,
        "Name": row.name,
        "FirstName": row.first_name,
        "LastName": row.last_name,
        "EmailAddress": row.email_address,
        "CompanyNumber": row.company_number or None,
        "TaxNumber": row.tax_number or None,
        "BankAccountDetails": "",
        "UpdatedDateUTC": ms_date(row.updated_at),
        "IsSupplier": False,
        "IsCustomer": is_customer,
        "DefaultCurrency": row.default_currency or None,
        "Website": row.website or None,  # read-only in Xero's API: typed in Xero's web app (here, the admin)
        "HasAttachments": False,
        "HasValidationErrors": False,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if summary:
        return body
    # Xero always lists every address and phone type, blank when unset.
    by_phone = {p.get("PhoneType"): p for p in row.phones}
    body["Phones"] = [
        {
            "PhoneType": kind,
            "PhoneNumber": "",
            "PhoneAreaCode": "",
            "PhoneCountryCode": "",
            **by_phone.get(kind, {}),
        }
        for kind in PHONE_TYPES
    ]
    by_address = {a.get("AddressType"): a for a in row.addresses}
    body["Addresses"] = [
        {
            "AddressType": kind,
            "City": "",
            "Region": "",
            "PostalCode": "",
            "Country": "",
            **by_address.get(kind, {}),
        }
        for kind in ADDRESS_TYPES
    ]
    body["ContactPersons"] = row.contact_persons
    body["ContactGroups"] = [
        {
            "ContactGroupID": str(uuid.uuid5(row.organisation.tenant_id, f"contact-group:{name}")),
            "Name": name,
            "Status": "ACTIVE",
            "HasValidationErrors": False,
        }
        for name in row.contact_groups
    ]
    outstanding, overdue = balance or (ZERO, ZERO)
    body["Balances"] = {
        "AccountsReceivable": {"Outstanding": _money(outstanding), "Overdue": _money(overdue)},
        "AccountsPayable": {"Outstanding": 0.0, "Overdue": 0.0},
    }
    return body


def contacts(rows: list[Contact], summary=False) -> list[dict]:
    customers = customer_ids(rows)  # one query for the page, not one a row
    if summary:
        return [contact(row, summary=True, is_customer=row.pk in customers) for row in rows]
    amounts = balances(rows)
    return [contact(row, amounts.get(row.pk), row.pk in customers) for row in rows]


def _invoice_payment(payment: Payment) -> dict:
    return {
        "PaymentID": str(payment.payment_id),
        "Date": ms_date(payment.date),
        "Amount": _money(payment.amount),
        "Reference": payment.reference,
        "CurrencyRate": 1.0,
        "HasAccount": True,
        "HasValidationErrors": False,
    }


def invoice_links(rows: list[Invoice]) -> tuple[dict[int, list[Payment]], dict[int, list]]:
    """The payments and credit allocations (with their credit notes) of a page of invoices, by invoice:
    two queries for the page."""
    ids = [row.pk for row in rows]
    payments: dict[int, list[Payment]] = {}
    for payment_row in Payment.objects.filter(invoice_id__in=ids):  # the model's order, as row.payments
        payments.setdefault(payment_row.invoice_id, []).append(payment_row)
    credits: dict[int, list] = {}
    for allocation in CreditNoteAllocation.objects.filter(invoice_id__in=ids).select_related("credit_note"):
        credits.setdefault(allocation.invoice_id, []).append(allocation)
    return payments, credits


def invoice(
    row: Invoice,
    summary=False,
    customers: set[int] | None = None,
    links: tuple[dict[int, list[Payment]], dict[int, list]] | None = None,
) -> dict:
    """An invoice as the API shows it; ``links``: ``invoice_links`` of its page (read here if None)."""
    body = {
        "Type": row.type,
        "InvoiceID": str(row.invoice_id),
        "InvoiceNumber": row.invoice_number,
        "Reference": row.reference,
        "AmountDue": _money(row.amount_due),
        "AmountPaid": _money(row.amount_paid),
        "AmountCredited": _money(row.amount_credited),
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": {"ContactID": str(row.contact.contact_id), "Name": row.contact.name},
        "DateString": date_string(row.date),
        "Date": ms_date(row.date),
        "Status": row.status,
        "LineAmountTypes": row.line_amount_types,
        "SubTotal": _money(row.sub_total),
        "TotalTax": _money(row.total_tax),
        "Total": _money(row.total),
        "UpdatedDateUTC": ms_date(row.updated_at),
        "UpdatedDateUTCString": utc_string(row.updated_at),
        "CurrencyCode": row.currency_code,
    }
    if row.due_date:
        body["DueDateString"] = date_string(row.due_date)
        body["DueDate"] = ms_date(row.due_date)
    if row.fully_paid_on:
        body["FullyPaidOnDate"] = ms_date(row.fully_paid_on)
    if summary:
        return body
    if customers is None:
        customers = customer_ids([row.contact])
    body["Contact"] = contact(row.contact, summary=True, is_customer=row.contact_id in customers)
    payments, credits = links or invoice_links([row])
    body["LineItems"] = row.line_items
    body["Payments"] = [
        _invoice_payment(p) for p in payments.get(row.pk, ()) if p.status == Payment.Status.AUTHORISED
    ]
    body["CreditNotes"] = [
        {
            "CreditNoteID": str(a.credit_note.credit_note_id),
            "CreditNoteNumber": a.credit_note.credit_note_number,
            "AppliedAmount": _money(a.amount),
            "Total": _money(a.credit_note.total),
            "Date": ms_date(a.date),
        }
        for a in credits.get(row.pk, ())
    ]
    body["Prepayments"], body["Overpayments"] = [], []
    return body


def credit_note(row, summary=False) -> dict:
    """A credit note as GET /CreditNotes shows it, with its allocations to invoices."""
    allocations = list(row.allocations.all())
    applied = sum((a.amount for a in allocations), ZERO)
    body = {
        "Type": row.type,
        "CreditNoteID": str(row.credit_note_id),
        "CreditNoteNumber": row.credit_note_number,
        "Reference": row.reference,
        "Contact": {"ContactID": str(row.contact.contact_id), "Name": row.contact.name},
        "DateString": date_string(row.date),
        "Date": ms_date(row.date),
        "Status": row.status,
        "LineAmountTypes": row.line_amount_types,
        "SubTotal": _money(row.sub_total),
        "TotalTax": _money(row.total_tax),
        "Total": _money(row.total),
        "RemainingCredit": _money(row.total - applied),
        "CurrencyCode": row.currency_code,
        "CurrencyRate": 1.0,
        "UpdatedDateUTC": ms_date(row.updated_at),
        "UpdatedDateUTCString": utc_string(row.updated_at),
        "HasAttachments": False,
        "HasErrors": False,
    }
    if summary:
        return body
    body["LineItems"] = row.line_items
    body["Allocations"] = [
        {
            "AllocationID": str(a.allocation_id),
            "Amount": _money(a.amount),
            "Date": ms_date(a.date),
            "Invoice": {"InvoiceID": str(a.invoice.invoice_id), "InvoiceNumber": a.invoice.invoice_number},
            "IsDeleted": False,
        }
        for a in allocations
    ]
    body["Payments"] = []
    return body


def payment(row: Payment) -> dict:
    inv = row.invoice
    return {
        "PaymentID": str(row.payment_id),
        "Date": ms_date(row.date),
        "BankAmount": _money(row.amount),
        "Amount": _money(row.amount),
        "Reference": row.reference,
        "CurrencyRate": 1.0,
        "PaymentType": "ACCRECPAYMENT" if inv.type == "ACCREC" else "ACCPAYPAYMENT",
        "Status": row.status,
        "UpdatedDateUTC": ms_date(row.updated_at),
        "UpdatedDateUTCString": utc_string(row.updated_at),
        "HasAccount": True,
        "IsReconciled": False,
        "Account": {
            "AccountID": str(uuid.uuid5(uuid.NAMESPACE_OID, row.account_code)),
            "Code": row.account_code,
        },
        "Invoice": {
            "Type": inv.type,
            "InvoiceID": str(inv.invoice_id),
            "InvoiceNumber": inv.invoice_number,
            "Contact": {"ContactID": str(inv.contact.contact_id), "Name": inv.contact.name},
            "CurrencyCode": inv.currency_code,
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "HasErrors": False,
            "IsDiscounted": False,
            "LineItems": [],
        },
        "HasValidationErrors": False,
    }
