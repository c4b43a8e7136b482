"""Admin pages that show what the sandbox Xero holds: they render, show balances, never show secrets."""

import pytest

from sandbox.xero import services
from sandbox.xero.models import Contact, Invoice, XeroApp

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    app = services.ensure_demo_app()
    return app, Contact.objects.first(), Invoice.objects.first()


@pytest.mark.parametrize("model", ["xeroapp", "organisation", "contact", "invoice", "payment"])
def test_changelists_render(admin_client, demo, model):
    response = admin_client.get(f"/admin/sandbox_xero/{model}/")
    assert response.status_code == 200
    assert services.DEMO_CLIENT_SECRET not in response.content.decode()


def test_change_pages_show_records_and_balances_but_no_secret(admin_client, demo):
    app, contact, invoice = demo
    page = admin_client.get(f"/admin/sandbox_xero/xeroapp/{app.pk}/change/").content.decode()
    assert app.client_id in page and app.client_secret not in page
    contact_page = admin_client.get(f"/admin/sandbox_xero/contact/{contact.pk}/change/").content.decode()
    assert "AR outstanding" in contact_page and contact.name in contact_page
    invoice_page = admin_client.get(f"/admin/sandbox_xero/invoice/{invoice.pk}/change/")
    assert invoice_page.status_code == 200


def test_an_app_added_in_the_admin_gets_generated_credentials(admin_client):
    response = admin_client.post(
        "/admin/sandbox_xero/xeroapp/add/",
        {
            "name": "Portal app",
            "redirect_uris": "https://x.example/cb",
            "minute_limit": 60,
            "day_limit": 5000,
            "app_minute_limit": 10000,
            "concurrent_limit": 5,
        },
    )
    assert response.status_code == 302, response.content
    app = XeroApp.objects.get(name="Portal app")
    assert len(app.client_id) == 32 and len(app.client_secret) >= 40
