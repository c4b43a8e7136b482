"""Sandbox Xero: apps, organisations, consents and demo data.

``connected_client_ids`` is what the webhook outbox uses to find the apps that should
hear about a write in an organisation.
"""

import datetime as dt
import secrets

from django.conf import settings
from django.db import transaction

from sandbox import clock
from sandbox.xero import accounting
from sandbox.xero.accounting import CENT
from sandbox.xero.models import Connection, Grant, Organisation, XeroApp

# A fixed development app, so a local connector can be configured once and forever.
DEMO_CLIENT_ID = "SANDBOXDEMOCLIENT0000000000000000"
DEMO_CLIENT_SECRET = "sandbox-demo-secret-not-a-real-credential"  # noqa: S105 (fake service's own value)
DEMO_REDIRECT_URIS = [
    "http://127.0.0.1:8000/connect/xero/callback/",
    "http://localhost:8000/connect/xero/callback/",
]
DEMO_ORGANISATIONS = ["Demo Company (NZ)", "Kiwi Outdoor Supplies Ltd"]


def connected_client_ids(tenant_id) -> list[str]:
    """Client ids of the apps with a live (not disconnected, not revoked) connection to the tenant."""
    rows = Connection.objects.filter(
        organisation__tenant_id=tenant_id, deleted_at__isnull=True, grant__revoked_at__isnull=True
    )
    return sorted(set(rows.values_list("grant__app__client_id", flat=True)))


def create_app(name: str, redirect_uris: list[str], client_id: str = "", client_secret: str = "", **limits):
    """Register an app; ``limits`` may set minute_limit, day_limit, app_minute_limit, concurrent_limit."""
    return XeroApp.objects.create(
        name=name,
        client_id=client_id or secrets.token_hex(16).upper(),
        client_secret=client_secret or secrets.token_urlsafe(36),
        redirect_uris="\n".join(redirect_uris),
        **limits,
    )


def create_organisation(
    name: str, currency: str = "NZD", timezone: str = "NEWZEALANDSTANDARDTIME"
) -> Organisation:
    return Organisation.objects.create(name=name, base_currency=currency, timezone=timezone)


@transaction.atomic
def connect(app: XeroApp, organisations: list[Organisation], scope: str) -> Grant:
    """A user consents: one grant (auth event) with a connection per chosen organisation."""
    now = clock.now()
    grant = Grant.objects.create(app=app, scope=scope, created_at=now)
    for organisation in organisations:
        previous = Connection.objects.filter(grant__app=app, organisation=organisation).order_by(
            "-created_at"
        )
        first = previous.first()
        Connection.objects.create(
            grant=grant,
            organisation=organisation,
            # Xero keeps the first connection date: updatedDateUtc differs after a reconnect.
            created_at=first.created_at if first else now,
            updated_at=now,
        )
    return grant


def ensure_demo_app() -> XeroApp:
    """The fixed demo app and its organisations, filled with demo data on first use."""
    # The installation's own callback too, so `make run` on another port can connect.
    wanted = [*DEMO_REDIRECT_URIS, f"{settings.PUBLIC_BASE_URL}/connect/xero/callback/"]
    app, created = XeroApp.objects.get_or_create(
        client_id=DEMO_CLIENT_ID,
        defaults={
            "name": "ml-connector (sandbox)",
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uris": "\n".join(dict.fromkeys(wanted)),
        },
    )
    known = app.redirect_uris.split()
    if not created and any(uri not in known for uri in wanted):
        app.redirect_uris = "\n".join(dict.fromkeys([*known, *wanted]))
        app.save(update_fields=["redirect_uris"])
    for name in DEMO_ORGANISATIONS:
        organisation, created = Organisation.objects.get_or_create(name=name)
        if created:
            seed_demo_data(organisation)
    return app


@transaction.atomic
def seed_demo_data(organisation: Organisation, customers: int = 8) -> None:
    """Customers with authorised, part-paid, paid, draft and overdue invoices, as a finance team has."""
    companies = [
        ("Ridgeway University", "accounts@ridgeway.example"),
        ("Boom FM", "finance@boomfm.example"),
        ("City Agency", "ap@cityagency.example"),
        ("Marine Systems", "payables@marinesys.example"),
        ("Hamilton Smith Ltd", "billing@hamiltonsmith.example"),
        ("Bayside Club", "treasurer@bayside.example"),
        ("Petrie McLoud Watson & Associates", "accounts@pmw.example"),
        ("Basket Case", "hello@basketcase.example"),
        ("Orlena Greenville", "orlena@greenville.example"),
        ("Young Bros Transport", "office@youngbros.example"),
    ]
    today = organisation.today()
    for index, (name, email) in enumerate(companies[:customers]):
        first, last = ("Jo", name.split()[0]) if index % 2 else ("Sam", name.split()[-1])
        contact = accounting.create_contact(
            organisation,
            {
                "Name": name,
                "EmailAddress": email,
                "FirstName": first,
                "LastName": last,
                "ContactNumber": f"C-{1000 + index}",
                "Phones": [
                    {"PhoneType": "DEFAULT", "PhoneNumber": f"555 01{index:02d}", "PhoneAreaCode": "09"}
                ],
                "Addresses": [
                    {
                        "AddressType": "STREET",
                        "AddressLine1": f"{10 + index} Queen Street",
                        "City": "Auckland",
                        "PostalCode": "1010",
                        "Country": "New Zealand",
                    }
                ],
            },
        )
        for number in range(3):
            issued = today - dt.timedelta(days=60 - 20 * number + index)
            status = "DRAFT" if number == 2 and index % 3 == 0 else "AUTHORISED"
            invoice = accounting.create_invoice(
                organisation,
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": str(contact.contact_id)},
                    "Date": issued.isoformat(),
                    "DueDate": (issued + dt.timedelta(days=30)).isoformat(),
                    "Status": status,
                    "Reference": f"PO-{4000 + index * 10 + number}",
                    "LineItems": [
                        {
                            "Description": "Consulting services",
                            "Quantity": 4 + number,
                            "UnitAmount": 150 + 25 * index,
                            "AccountCode": "200",
                            "TaxType": "OUTPUT2",
                        },
                        {
                            "Description": "Travel",
                            "Quantity": 1,
                            "UnitAmount": 80,
                            "AccountCode": "200",
                            "TaxType": "OUTPUT2",
                        },
                    ],
                },
            )
            if status == "AUTHORISED" and number == 0:
                accounting.create_payment(
                    organisation,
                    {
                        "Invoice": {"InvoiceID": str(invoice.invoice_id)},
                        "Account": {"Code": "090"},
                        "Date": (issued + dt.timedelta(days=10)).isoformat(),
                        "Amount": float(invoice.total if index % 2 else (invoice.total / 2).quantize(CENT)),
                        "Reference": "Bank transfer",
                    },
                )


def demo_activity_step(organisation: Organisation, chooser) -> str:
    """One thing a finance team does: add a customer, raise an invoice, or record a payment."""
    from sandbox.xero.models import Contact, Invoice

    today = organisation.today()
    open_invoices = list(Invoice.objects.filter(organisation=organisation, status="AUTHORISED"))
    action = chooser.choice(["contact", "invoice", "invoice", "payment"])
    if action == "payment" and open_invoices:
        invoice = chooser.choice(open_invoices)
        amount = invoice.amount_due if chooser.random() < 0.6 else (invoice.amount_due / 2).quantize(CENT)
        accounting.create_payment(
            organisation,
            {
                "Invoice": {"InvoiceID": str(invoice.invoice_id)},
                "Account": {"Code": "090"},
                "Date": today.isoformat(),
                "Amount": float(amount),
                "Reference": "Bank transfer",
            },
        )
        return f"payment of {amount} on {invoice.invoice_number}"
    contacts = list(Contact.objects.filter(organisation=organisation, status="ACTIVE"))
    if action == "invoice" and contacts:
        contact = chooser.choice(contacts)
        invoice = accounting.create_invoice(
            organisation,
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": str(contact.contact_id)},
                "Date": today.isoformat(),
                "DueDate": (today + dt.timedelta(days=20)).isoformat(),
                "Status": "AUTHORISED",
                "LineItems": [
                    {
                        "Description": "Services",
                        "Quantity": chooser.randint(1, 10),
                        "UnitAmount": chooser.choice([95, 120, 150, 480]),
                        "AccountCode": "200",
                    }
                ],
            },
        )
        return f"invoice {invoice.invoice_number} for {contact.name}: {invoice.total}"
    number = Contact.objects.filter(organisation=organisation).count() + 1
    contact = accounting.create_contact(
        organisation,
        {
            "Name": f"New Customer {number:03d} Ltd",
            "EmailAddress": f"accounts{number}@customer.example",
            "FirstName": "Alex",
            "LastName": f"Buyer{number}",
        },
    )
    return f"customer {contact.name}"
