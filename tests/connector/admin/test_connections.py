"""Admin: change pages never show a secret; write-only fields keep the stored value when left empty."""

import pytest
from django.urls import reverse

from connector.models import SyncPair
from tests.connector.conftest import ALL_SECRETS, PD_API_TOKEN, XERO_SECRET


@pytest.fixture
def pair(xero_connection, pipedrive_api_token_connection):
    return SyncPair.objects.create(
        name="Main",
        xero_connection=xero_connection,
        pipedrive_connection=pipedrive_api_token_connection,
        xero_webhook_key="xero-webhook-key-VALUE",
    )


def test_change_pages_show_no_secret(admin_client, xero_connection, pipedrive_oauth_connection, pair):
    pages = [
        reverse("admin:connector_xeroconnection_change", args=[xero_connection.pk]),
        reverse("admin:connector_pipedriveconnection_change", args=[pipedrive_oauth_connection.pk]),
        reverse("admin:connector_pipedriveconnection_change", args=[pair.pipedrive_connection.pk]),
        reverse("admin:connector_syncpair_change", args=[pair.pk]),
        reverse("admin:connector_xeroconnection_changelist"),
        reverse("admin:connector_syncpair_changelist"),
    ]
    secrets = [*ALL_SECRETS, "xero-webhook-key-VALUE", pair.pipedrive_webhook_password]
    for page in pages:
        html = admin_client.get(page).content.decode()
        assert "Demo Org" in html or "OAuth Co" in html or "Demo Co" in html or "Main" in html
        for secret in secrets:
            assert secret not in html, (page, secret)
    sync_page = admin_client.get(reverse("admin:connector_syncpair_change", args=[pair.pk])).content.decode()
    assert f"/webhooks/xero/{pair.key}/" in sync_page


def test_empty_write_only_field_keeps_the_secret_and_a_new_value_replaces_it(
    admin_client, pipedrive_api_token_connection
):
    url = reverse("admin:connector_pipedriveconnection_change", args=[pipedrive_api_token_connection.pk])
    form = {
        "company_name": "Renamed Co",
        "company_domain": "demo",
        "api_domain": "https://demo.pipedrive.com",
        "api_token": "",
        "client_id": "",
        "client_secret": "",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    pipedrive_api_token_connection.refresh_from_db()
    assert pipedrive_api_token_connection.company_name == "Renamed Co"
    assert pipedrive_api_token_connection.api_token == PD_API_TOKEN

    admin_client.post(url, {**form, "api_token": "a-new-token"})
    pipedrive_api_token_connection.refresh_from_db()
    assert pipedrive_api_token_connection.api_token == "a-new-token"
    assert pipedrive_api_token_connection.secrets_set_at is not None


def test_xero_client_secret_is_write_only(admin_client, xero_connection):
    url = reverse("admin:connector_xeroconnection_change", args=[xero_connection.pk])
    response = admin_client.post(
        url, {"tenant_name": "Demo Org", "client_id": "client-1", "client_secret": ""}
    )
    assert response.status_code == 302
    xero_connection.refresh_from_db()
    assert xero_connection.client_secret == XERO_SECRET
