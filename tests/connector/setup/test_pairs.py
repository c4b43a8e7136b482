"""Pair setup services: creating a pair, its Xero webhook key, and the first load from Xero."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from connector.errors import ConnectorError
from connector.models import ConnectionStatus, SyncPair, WebhookEvent
from connector.setup import pairs

pytestmark = pytest.mark.django_db

XERO_API = "https://xero.test/api.xro/2.0"


@pytest.fixture
def live_xero(xero_connection, settings):
    settings.XERO_API_URL = XERO_API
    xero_connection.expires_at = timezone.now() + timedelta(minutes=30)  # no refresh needed
    xero_connection.save()
    return xero_connection


def test_create_pair_joins_two_active_connections(xero_connection, pipedrive_api_token_connection):
    pair = pairs.create_pair("  Finance  ", xero_connection, pipedrive_api_token_connection)
    pair.refresh_from_db()
    assert pair.name == "Finance" and pair.enabled and pair.key
    assert pair.pipedrive_webhook_user and pair.pipedrive_webhook_password  # for the Pipedrive webhooks
    assert pairs.xero_webhook_url(pair).endswith(f"/webhooks/xero/{pair.key}/")


def test_a_broken_connection_is_not_paired(xero_connection, pipedrive_api_token_connection):
    pipedrive_api_token_connection.status = ConnectionStatus.BROKEN
    pipedrive_api_token_connection.save()
    with pytest.raises(ConnectorError, match="reconnect it before pairing"):
        pairs.create_pair("Finance", xero_connection, pipedrive_api_token_connection)
    assert not SyncPair.objects.exists()


def test_the_same_connections_are_not_paired_twice_and_a_name_is_needed(
    xero_connection, pipedrive_api_token_connection
):
    pairs.create_pair("Finance", xero_connection, pipedrive_api_token_connection)
    with pytest.raises(ConnectorError):
        pairs.create_pair("Finance again", xero_connection, pipedrive_api_token_connection)
    assert SyncPair.objects.count() == 1
    SyncPair.objects.all().delete()
    with pytest.raises(ConnectorError):
        pairs.create_pair("   ", xero_connection, pipedrive_api_token_connection)
    assert not SyncPair.objects.exists()


def test_the_xero_webhook_key_is_stored_and_an_empty_one_refused(
    xero_connection, pipedrive_api_token_connection
):
    pair = pairs.create_pair("Finance", xero_connection, pipedrive_api_token_connection)
    with pytest.raises(ConnectorError, match="empty"):
        pairs.set_xero_webhook_key(pair, "   ")
    pair.refresh_from_db()
    assert pair.xero_webhook_key == "" and pair.secrets_set_at is None
    pairs.set_xero_webhook_key(pair, " key-from-the-portal\n")
    pair.refresh_from_db()
    assert pair.xero_webhook_key == "key-from-the-portal" and pair.secrets_set_at is not None


@responses.activate
def test_the_initial_load_queues_contacts_sales_invoices_and_payments(
    live_xero, pipedrive_api_token_connection
):
    pair = pairs.create_pair("Finance", live_xero, pipedrive_api_token_connection)
    full_page = [{"ContactID": f"c-{n}"} for n in range(pairs.XERO_PAGE)]
    responses.get(f"{XERO_API}/Contacts", match=[responses.matchers.query_param_matcher({"page": "1"})],
                  json={"Contacts": full_page})  # fmt: skip
    responses.get(f"{XERO_API}/Contacts", match=[responses.matchers.query_param_matcher({"page": "2"})],
                  json={"Contacts": [{"ContactID": "c-last"}]})  # fmt: skip
    invoices = [{"InvoiceID": "i-sale", "Type": "ACCREC"}, {"InvoiceID": "i-bill", "Type": "ACCPAY"}]
    responses.get(f"{XERO_API}/Invoices", json={"Invoices": invoices})
    responses.get(f"{XERO_API}/Payments", json={"Payments": [{"PaymentID": "p-1"}]})

    assert pairs.queue_initial_load(pair) == pairs.XERO_PAGE + 3

    rows = WebhookEvent.objects.filter(pair=pair)
    assert set(rows.values_list("status", flat=True)) == {"pending"}
    assert {r.tenant_id for r in rows} == {live_xero.tenant_id}
    by_category = {
        c: set(rows.filter(category=c).values_list("resource_id", flat=True)) for c in ("INVOICE", "PAYMENT")
    }
    assert by_category == {"INVOICE": {"i-sale"}, "PAYMENT": {"p-1"}}  # bills are not synced
    assert rows.filter(category="CONTACT").count() == pairs.XERO_PAGE + 1


def test_a_disabled_pair_is_not_loaded(live_xero, pipedrive_api_token_connection):
    pair = pairs.create_pair("Finance", live_xero, pipedrive_api_token_connection)
    SyncPair.objects.filter(pk=pair.pk).update(enabled=False)
    with pytest.raises(ConnectorError, match="disabled"):
        pairs.queue_initial_load(pair)
    assert not WebhookEvent.objects.exists()
