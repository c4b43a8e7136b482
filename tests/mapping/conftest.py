"""Fixtures of the mapping tests: a sync pair between two (fake) connections, and a world on the sandbox."""

import pytest

from connector.connections import services as connections
from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection
from tests.conftest import SANDBOX_PUBLIC_BASE
from tests.connector.connections.test_services_sandbox import connect_one_xero_org


@pytest.fixture
def pair(db):
    xero = XeroConnection.objects.create(
        tenant_id="tenant-m", tenant_name="Mapping Org", client_id="c", status=ConnectionStatus.ACTIVE
    )
    pipedrive = PipedriveConnection.objects.create(
        company_id=77,
        company_name="Mapping Co",
        api_domain="https://mapping.pipedrive.com",
        auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token="mapping-api-token-0001",
        status=ConnectionStatus.ACTIVE,
    )
    return SyncPair.objects.create(name="Mapping pair", xero_connection=xero, pipedrive_connection=pipedrive)


@pytest.fixture
def mapping_defaults(db):
    """The default rows of migration mapping/0002, put back when a transactional test's flush removed them."""
    import importlib

    from django.apps import apps

    importlib.import_module("mapping.migrations.0002_default_rules").install(apps, None)


@pytest.fixture
def world(admin_client, sandbox_urls, mapping_defaults):
    """A pair joining a sandbox Xero organisation (one contact, one part-paid invoice) to the demo company."""
    from sandbox.pipedrive import services as pd
    from sandbox.xero import accounting
    from sandbox.xero import services as xero

    app = xero.create_app("Connector under test", [f"{SANDBOX_PUBLIC_BASE}/connect/xero/callback/"])
    org = xero.create_organisation("Mapping Test Org")
    contact = accounting.create_contact(
        org,
        {
            "Name": "Te Whare Kōrero Ltd",
            "FirstName": "Aroha",
            "LastName": "Ngata",
            "EmailAddress": "aroha@whare.example",
            "ContactNumber": "C-77",
            "Addresses": [
                {
                    "AddressType": "STREET",
                    "AddressLine1": "1 Queen St",
                    "City": "Auckland",
                    "PostalCode": "1010",
                    "Country": "New Zealand",
                },
            ],
            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "555 0100", "PhoneAreaCode": "09"}],
            "ContactPersons": [
                {
                    "FirstName": "Bob",
                    "LastName": "Lee",
                    "EmailAddress": "bob@whare.example",
                    "IncludeInEmails": True,
                }
            ],
        },
    )
    invoice = accounting.create_invoice(
        org,
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": str(contact.contact_id)},
            "Date": "2026-10-01",
            "DueDate": "2026-10-31",
            "Status": "AUTHORISED",
            "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 1000, "AccountCode": "200"}],
        },
    )
    accounting.create_payment(
        org,
        {
            "Invoice": {"InvoiceID": str(invoice.invoice_id)},
            "Account": {"Code": "090"},
            "Date": "2026-10-05",
            "Amount": 100.0,
        },
    )
    xero_conn = connect_one_xero_org(admin_client, app, org)
    company = pd.ensure_demo_company()
    pd_conn = connections.connect_pipedrive_api_token(
        pd.DEMO_API_TOKEN, api_domain=f"{sandbox_urls}/pipedrive"
    )
    pair = SyncPair.objects.create(name="Test pair", xero_connection=xero_conn, pipedrive_connection=pd_conn)
    return {
        "pair": pair,
        "contact_id": str(contact.contact_id),
        "invoice_id": str(invoice.invoice_id),
        "company": company,
    }
