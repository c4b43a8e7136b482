"""The guided setup ("Set up a sync") against the sandbox on a live server: each step's state from
nothing to done, every action safe to repeat, what went wrong shown on the step, and the home's
call-out and groups."""

import base64
import hashlib
import hmac
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import include, path

from connector.models import ConnectionStatus, PipedriveConnection, SetupStepResult, SyncPair
from connector.setup import status as setup_status
from tests.conftest import SANDBOX_PUBLIC_BASE
from tests.connector.connections.test_services_sandbox import consent_xero

urlpatterns = [
    path("admin/", include("connector.operations.urls")),  # the health page and the home's summary
    path("admin/", __import__("django.contrib.admin", fromlist=["site"]).site.urls),
    path("connect/", include("connector.connections.urls")),
    path("webhooks/", include("connector.intake.urls")),
    path("pipedrive/panel/", include("connector.panel.urls")),  # the pair page shows its endpoint
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

SETUP = "/admin/setup/"


@pytest.fixture
def sandbox(sandbox_urls):
    import importlib

    from django.apps import apps

    from sandbox.pipedrive import services as pd
    from sandbox.xero import services as xero

    # The default mapping rows (a data migration), put back after a transactional test's flush.
    importlib.import_module("mapping.migrations.0002_default_rules").install(apps, None)

    app = xero.create_app("Connector under test", [f"{SANDBOX_PUBLIC_BASE}/connect/xero/callback/"])
    org = xero.create_organisation("Setup Test Org")
    company = pd.ensure_demo_company()
    return {"app": app, "org": org, "company": company, "token": pd.DEMO_API_TOKEN, "base": sandbox_urls}


def states(client, pair=None) -> dict:
    page = client.get(SETUP + (f"?pair={pair.pk}" if pair else ""))
    assert page.status_code == 200
    return dict(re.findall(r'id="step-(\w+)" data-state="(\w+)"', page.content.decode()))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def connect_xero_from_setup(client, sandbox):
    client.get("/connect/xero/", {"next": SETUP})  # the setup page's "Connect Xero" link
    start = client.post(
        "/connect/xero/",
        {"client_id": sandbox["app"].client_id, "client_secret": sandbox["app"].client_secret},
    )
    query = consent_xero(client, start["Location"], [sandbox["org"]])
    pick = client.get("/connect/xero/callback/", query)["Location"]
    return client.post(pick, {"tenant_id": str(sandbox["org"].tenant_id)})


def connect_pipedrive_from_setup(client, sandbox):
    client.get("/connect/pipedrive/", {"next": SETUP})
    return client.post(
        "/connect/pipedrive/",
        {"kind": "api_token", "api_token": sandbox["token"], "api_domain": f"{sandbox['base']}/pipedrive"},
    )


def post(client, pair, action, **data):
    return client.post(SETUP, {"action": action, "pair": pair.pk if pair else "", **data}, follow=True)


def create_pair(client):
    """The pair form as the page offers it: the only connection of each service chosen."""
    from connector.models import XeroConnection

    choice = {
        "xero_connection": XeroConnection.objects.get().pk,
        "pipedrive_connection": PipedriveConnection.objects.get().pk,
    }
    return post(client, None, "create_pair", **choice)


def test_from_nothing_to_a_working_sync_each_step_safe_to_repeat(
    admin_client, sandbox, settings, live_server
):
    from sandbox.pipedrive.models import CustomField, Pipeline, Webhook
    from sandbox.xero.models import XeroApp

    assert states(admin_client) == {
        "xero": "todo",
        "pipedrive": "todo",
        "pair": "waiting",
        "pipedrive_setup": "waiting",
        "pipedrive_webhooks": "waiting",
        "xero_webhook": "waiting",
        "backfill": "waiting",
    }
    # The connect pages come back to the setup when started from it.
    assert connect_xero_from_setup(admin_client, sandbox)["Location"] == SETUP
    assert connect_pipedrive_from_setup(admin_client, sandbox)["Location"] == SETUP
    assert states(admin_client)["pair"] == "todo"

    created = create_pair(admin_client)
    pair = SyncPair.objects.get()
    again = create_pair(admin_client)
    assert SyncPair.objects.count() == 1 and again.redirect_chain[-1][0] == f"{SETUP}?pair={pair.pk}"
    assert "is ready" in messages_of(created)[0]
    assert states(admin_client, pair)["pipedrive_setup"] == "todo"

    post(admin_client, pair, "pipedrive_setup")
    fields = CustomField.objects.filter(company=sandbox["company"]).count()
    repeat = post(admin_client, pair, "pipedrive_setup")
    assert "Everything already existed" in messages_of(repeat)[0]
    assert CustomField.objects.filter(company=sandbox["company"]).count() == fields >= 12
    assert Pipeline.objects.filter(company=sandbox["company"], name="Xero invoices").count() == 1

    post(admin_client, pair, "pipedrive_webhooks")
    post(admin_client, pair, "pipedrive_webhooks")
    assert (
        Webhook.objects.filter(company=sandbox["company"], subscription_url__contains=pair.key).count() == 3
    )
    current = states(admin_client, pair)
    assert current["pipedrive_setup"] == current["pipedrive_webhooks"] == "done"
    assert current["xero_webhook"] == "todo" and current["backfill"] == "todo"

    # The Xero webhook: a bad key is refused and changes nothing; then the portal's key and intent to receive.
    refused = post(admin_client, pair, "xero_key", xero_webhook_key="short key")
    assert "does not look like a Xero webhook key" in messages_of(refused)[0]
    pair.refresh_from_db()
    assert pair.xero_webhook_key == ""
    settings.PUBLIC_BASE_URL = live_server.url  # the sandbox's Xero must reach the receiver
    settings.SANDBOX_ENABLED = True
    from sandbox import webhooks

    hook = webhooks.register_xero_webhook(
        XeroApp.objects.get().client_id, setup_status.xero_webhook_url(pair), categories="CONTACT,INVOICE"
    )
    post(admin_client, pair, "xero_key", xero_webhook_key=webhooks.new_xero_webhook_key())  # the wrong key
    wrong = post(admin_client, pair, "sandbox_intent")
    assert "Intent to receive failed" in messages_of(wrong)[0]
    page = admin_client.get(f"{SETUP}?pair={pair.pk}").content.decode()
    assert 'id="step-xero_webhook" data-state="failed"' in page and "copy it again" in page

    post(admin_client, pair, "xero_key", xero_webhook_key=hook.signing_key)
    assert states(admin_client, pair)["xero_webhook"] == "todo"  # a new key needs a new handshake
    passed = post(admin_client, pair, "sandbox_intent")
    assert "Intent to receive passed" in messages_of(passed)[0]
    final = admin_client.get(f"{SETUP}?pair={pair.pk}")
    assert states(admin_client, pair) == {
        "xero": "done",
        "pipedrive": "done",
        "pair": "done",
        "pipedrive_setup": "done",
        "pipedrive_webhooks": "done",
        "xero_webhook": "done",
        "backfill": "todo",
    }
    assert "The sync is set up." in final.content.decode()
    assert hook.signing_key not in final.content.decode()  # the key is never shown back
    pair.refresh_from_db()
    assert setup_status.setup_status(pair).complete


def test_a_broken_connection_and_a_refused_action_are_shown_on_their_step(admin_client, sandbox):
    connect_xero_from_setup(admin_client, sandbox)
    connect_pipedrive_from_setup(admin_client, sandbox)
    create_pair(admin_client)
    pair = SyncPair.objects.get()
    PipedriveConnection.objects.update(api_token="revoked-token-0000000000000000")

    failed = post(admin_client, pair, "pipedrive_setup")
    assert messages_of(failed)[0].startswith("Pipedrive refused or failed:")
    result = SetupStepResult.objects.get(pair=pair, step=SetupStepResult.Step.PIPEDRIVE_SETUP)
    assert not result.ok and "revoked-token" not in result.message  # the reason, never the secret
    page = admin_client.get(f"{SETUP}?pair={pair.pk}").content.decode()
    assert 'id="step-pipedrive_setup" data-state="failed"' in page and "Pipedrive refused or failed" in page
    # A connection found broken (by a sync, a refresh or "Test connection") says why and offers to reconnect.
    PipedriveConnection.objects.update(
        status=ConnectionStatus.BROKEN, last_error="Pipedrive refused the API token (401)."
    )
    page = admin_client.get(f"{SETUP}?pair={pair.pk}").content.decode()
    step = page.split('id="step-pipedrive"')[1].split("</li>")[0]
    assert 'data-state="failed"' in step and "Pipedrive refused the API token (401)." in step
    assert "Reconnect Pipedrive" in step


def test_connect_pages_ignore_a_next_address_on_another_site(admin_client, sandbox):
    admin_client.get("/connect/pipedrive/", {"next": "https://evil.example/admin/setup/"})
    answer = admin_client.post(
        "/connect/pipedrive/",
        {"kind": "api_token", "api_token": sandbox["token"], "api_domain": f"{sandbox['base']}/pipedrive"},
    )
    assert answer["Location"].startswith("/admin/connector/pipedriveconnection/")


def test_xero_intent_to_receive_from_the_real_portal_marks_the_step_done(client, admin_client, sandbox):
    connect_xero_from_setup(admin_client, sandbox)
    connect_pipedrive_from_setup(admin_client, sandbox)
    create_pair(admin_client)
    pair = SyncPair.objects.get()
    key = "k" * 40
    post(admin_client, pair, "xero_key", xero_webhook_key=key)
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ABCDEFGHIJKLMNOPQRST"}'
    signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    url = f"/webhooks/xero/{pair.key}/"
    assert (
        client.post(url, body, content_type="application/json", HTTP_X_XERO_SIGNATURE="bad").status_code
        == 401
    )
    answer = client.post(url, body, content_type="application/json", HTTP_X_XERO_SIGNATURE=signature)
    assert answer.status_code == 200
    assert (
        states(admin_client, pair)["xero_webhook"] == "done"
    )  # the refused half of the handshake is expected


def test_home_groups_what_finance_uses_first_and_calls_out_the_setup_until_done(admin_client, settings, db):
    settings.SANDBOX_ENABLED = True
    home = admin_client.get("/admin/").content.decode()
    headings = re.findall(r'class="section"[^>]*>([^<]+)</a>', home)
    assert headings[:2] == ["Finance", "Connections and setup"]
    assert headings.index("Advanced") > headings.index("Users and access")
    assert headings[-1] == "Sandbox (emulated Xero and Pipedrive)"
    finance = home.split('id="group-finance"')[1].split('id="group-connections"')[0]
    for label in ("Sync records", "Field mappings", "Deal stages", "Credit limits", "Inbox"):
        assert f">{label}</a>" in finance
    advanced = home.split('id="group-advanced"')[1]
    for label in ("API rate windows", "Pipedrive index", "Deferred jobs", "Task queue: failed"):
        assert f">{label}</a>" in advanced
    assert "Customers (Xero contacts) → organizations" in home
    assert "Start here: set up your first sync" in home and 'href="/admin/setup/"' in home

    settings.SANDBOX_ENABLED = False
    home = admin_client.get("/admin/").content.decode()
    assert "Sandbox (emulated" not in home and "Pipedrive: Deals" not in home


def test_setup_needs_staff_and_its_actions_need_the_right_to_change_pairs(client, db):
    assert client.get(SETUP)["Location"].startswith("/admin/login/")
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncpair"))
    client.force_login(viewer)
    assert client.get(SETUP).status_code == 200
    assert client.post(SETUP, {"action": "create_pair"}).status_code == 403
    assert SyncPair.objects.count() == 0


def test_with_several_pairs_the_page_and_the_home_follow_the_newest_unless_one_is_chosen(
    admin_client, xero_connection, pipedrive_api_token_connection, pipedrive_oauth_connection
):
    first = SyncPair.objects.create(
        name="First", xero_connection=xero_connection, pipedrive_connection=pipedrive_api_token_connection
    )
    newest = SyncPair.objects.create(
        name="Newest", xero_connection=xero_connection, pipedrive_connection=pipedrive_oauth_connection
    )
    home = admin_client.get("/admin/").content.decode()
    assert "Finish setting up “Newest”" in home and "Start here" not in home
    assert setup_status.setup_status().pair == newest
    page = admin_client.get(f"{SETUP}?pair={first.pk}").content.decode()
    assert f'<option value="{first.pk}" selected>First</option>' in page
    assert "“First” syncs Xero" in page
