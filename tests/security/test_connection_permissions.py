"""The connect pages, the connection and pair actions and the guided setup's actions need the model's
change permission, not staff status: Finance (staff, no connector connection permissions) gets 403
and changes nothing; the Integration admin is let in; anonymous users go to the admin login."""

import secrets
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from connector.models import (
    ConnectionStatus,
    OAuthState,
    PipedriveConnection,
    SetupStepResult,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)

pytestmark = pytest.mark.django_db


def state_row(service: str, user, **fields) -> OAuthState:
    return OAuthState.objects.create(
        state=secrets.token_urlsafe(16),
        service=service,
        code_verifier="v" * 43,
        client_id="client",
        client_secret="secret",
        redirect_uri="https://app.example/cb/",
        user_id=user.pk if user else None,
        expires_at=timezone.now() + timedelta(minutes=10),
        **fields,
    )


def snapshot():
    """Everything a connect page could change."""
    return (
        list(XeroConnection.objects.order_by("pk").values()),
        list(PipedriveConnection.objects.order_by("pk").values()),
        list(OAuthState.objects.order_by("pk").values()),
    )


def requests_of(user):
    """Every connect/callback/pick request, GET and POST (a pick state owned by ``user``)."""
    pick = state_row("xero", user, token_set='{"access_token": "a"}')
    xero_state = state_row("xero", user)
    pipedrive_state = state_row("pipedrive", user)
    return [
        ("get", reverse("connector:xero-start"), {}),
        ("post", reverse("connector:xero-start"), {"client_id": "c", "client_secret": "s"}),
        ("get", reverse("connector:xero-callback"), {"state": xero_state.state, "code": "x"}),
        ("get", reverse("connector:xero-pick", args=[pick.state]), {}),
        ("post", reverse("connector:xero-pick", args=[pick.state]), {"tenant_id": "t-1"}),
        ("get", reverse("connector:pipedrive-start"), {}),
        (
            "post",
            reverse("connector:pipedrive-start"),
            {"kind": "oauth", "client_id": "c", "client_secret": "s"},
        ),
        (
            "post",
            reverse("connector:pipedrive-start"),
            {"kind": "api_token", "api_token": "t" * 40, "api_domain": "https://acme.pipedrive.com"},
        ),
        ("get", reverse("connector:pipedrive-callback"), {"state": pipedrive_state.state, "code": "x"}),
    ]


@responses.activate
def test_finance_gets_403_on_every_connect_page_and_nothing_changes(
    client, finance_user, xero_connection, pipedrive_api_token_connection
):
    client.force_login(finance_user)
    calls = requests_of(finance_user)
    before = snapshot()
    for method, url, data in calls:
        answer = getattr(client, method)(url, data)
        assert answer.status_code == 403, (method, url)
    assert snapshot() == before
    assert len(responses.calls) == 0  # nothing was asked of Xero or Pipedrive


def test_anonymous_users_are_sent_to_the_admin_login(client, roles):
    for method, url, data in requests_of(None):
        answer = getattr(client, method)(url, data)
        assert answer.status_code == 302, (method, url)
        assert answer["Location"].startswith(reverse("admin:login"))


def test_the_integration_admin_opens_the_connect_pages(client, integration_admin):
    client.force_login(integration_admin)
    assert client.get(reverse("connector:xero-start")).status_code == 200
    assert client.get(reverse("connector:pipedrive-start")).status_code == 200
    answer = client.post(reverse("connector:xero-start"), {"client_id": "c", "client_secret": "s"})
    assert answer.status_code == 302 and OAuthState.objects.filter(user_id=integration_admin.pk).exists()


def test_each_permission_opens_only_its_own_service(client, roles):
    xero_only = User.objects.create_user("xo", "xo@example.com", "pw-for-tests-1", is_staff=True)
    xero_only.user_permissions.add(Permission.objects.get(codename="change_xeroconnection"))
    client.force_login(xero_only)
    assert client.get(reverse("connector:xero-start")).status_code == 200
    assert client.get(reverse("connector:pipedrive-start")).status_code == 403


def offered_actions(client, listing) -> list[str]:
    page = client.get(listing)
    assert page.status_code == 200
    form = page.context["action_form"]
    return [name for name, _ in form.fields["action"].choices] if form else []


@pytest.mark.parametrize(
    ("model", "action"),
    [
        ("pipedriveconnection", "disconnect"),
        ("pipedriveconnection", "refresh_token_now"),
        ("pipedriveconnection", "test_connection"),
        ("xeroconnection", "disconnect"),
    ],
)
@responses.activate
def test_connection_actions_need_the_change_permission(
    client, roles, model, action, xero_connection, pipedrive_api_token_connection
):
    viewer = User.objects.create_user("viewer", "v@example.com", "pw-for-tests-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    client.force_login(viewer)
    row = xero_connection if model == "xeroconnection" else pipedrive_api_token_connection
    listing = reverse(f"admin:connector_{model}_changelist")
    assert action not in offered_actions(client, listing)
    client.post(listing, {"action": action, "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.status == ConnectionStatus.ACTIVE
    assert len(responses.calls) == 0


@responses.activate
def test_pair_actions_need_the_change_permission(
    client, roles, xero_connection, pipedrive_api_token_connection
):
    pair = SyncPair.objects.create(
        name="P", xero_connection=xero_connection, pipedrive_connection=pipedrive_api_token_connection
    )
    viewer = User.objects.create_user("viewer", "v@example.com", "pw-for-tests-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncpair"))
    client.force_login(viewer)
    listing = reverse("admin:connector_syncpair_changelist")
    assert offered_actions(client, listing) == []
    for action in ("register_pipedrive_webhooks", "test_pair"):
        client.post(listing, {"action": action, "_selected_action": [pair.pk]})
    assert len(responses.calls) == 0


def create_pair_form(xero_connection, pipedrive_connection) -> dict:
    return {
        "action": "create_pair",
        "xero_connection": xero_connection.pk,
        "pipedrive_connection": pipedrive_connection.pk,
    }


def test_finance_cannot_run_a_setup_action(
    client, finance_user, xero_connection, pipedrive_api_token_connection
):
    client.force_login(finance_user)
    assert (
        client.post(
            reverse("admin:setup"), create_pair_form(xero_connection, pipedrive_api_token_connection)
        ).status_code
        == 403
    )
    assert not SyncPair.objects.exists()


def test_creating_a_pair_on_the_setup_page_needs_the_add_permission(
    client, roles, xero_connection, pipedrive_api_token_connection
):
    editor = User.objects.create_user("editor", "e@example.com", "pw-for-tests-1", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="change_syncpair"))
    client.force_login(editor)
    assert (
        client.post(
            reverse("admin:setup"), create_pair_form(xero_connection, pipedrive_api_token_connection)
        ).status_code
        == 403
    )
    assert not SyncPair.objects.exists()


def test_the_setup_page_changes_nothing_on_get(
    client, integration_admin, xero_connection, pipedrive_api_token_connection
):
    client.force_login(integration_admin)
    query = create_pair_form(xero_connection, pipedrive_api_token_connection)
    assert client.get(reverse("admin:setup"), query).status_code == 200
    assert not SyncPair.objects.exists() and not SetupStepResult.objects.exists()
    # The same action over POST does run for the Integration admin.
    assert client.post(reverse("admin:setup"), query).status_code == 302
    assert SyncPair.objects.count() == 1


def test_finance_sees_the_inbox_but_cannot_reprocess_it(client, finance_user, integration_admin, pair):
    event = WebhookEvent.objects.create(
        pair=pair,
        source=WebhookEvent.Source.XERO,
        tenant_id="t",
        category="CONTACT",
        resource_id="c-1",
        event_type="UPDATE",
        event_time=timezone.now(),
        status=WebhookEvent.Status.FAILED,
        reason="Xero answered 500",
    )
    listing = reverse("admin:connector_webhookevent_changelist")
    client.force_login(finance_user)
    assert "reprocess" not in offered_actions(client, listing)
    client.post(listing, {"action": "reprocess", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED
    client.force_login(integration_admin)
    assert "reprocess" in offered_actions(client, listing)
