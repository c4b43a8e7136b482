"""An OAuth callback is finished only by the user who started it: another user's state is refused,
nothing is exchanged or stored, and the state stays usable by its owner."""

import secrets
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from connector.connections import oauth
from connector.models import OAuthState, PipedriveConnection, XeroConnection

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_admin(roles):
    user = User.objects.create_user("ada", "ada@example.com", "pw-for-tests-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Integration admin"))
    return user


def state_of(user, service: str, **fields) -> OAuthState:
    return OAuthState.objects.create(
        state=secrets.token_urlsafe(16),
        service=service,
        code_verifier="v" * 43,
        client_id="client",
        client_secret="secret",
        redirect_uri=f"https://app.example/connect/{service}/callback/",
        user_id=user.pk,
        expires_at=timezone.now() + timedelta(minutes=10),
        **fields,
    )


def test_another_users_state_is_refused_and_stays_usable(integration_admin, second_admin):
    row = state_of(integration_admin, "xero")
    with pytest.raises(oauth.BadState, match="another user"):
        oauth.consume_state("xero", row.state, user_id=second_admin.pk)
    row.refresh_from_db()
    assert row.used_at is None
    assert oauth.consume_state("xero", row.state, user_id=integration_admin.pk).pk == row.pk
    with pytest.raises(oauth.BadState):  # still single use
        oauth.consume_state("xero", row.state, user_id=integration_admin.pk)


def test_a_state_without_an_owner_is_refused(integration_admin):
    row = state_of(integration_admin, "pipedrive")
    OAuthState.objects.filter(pk=row.pk).update(user_id=None)
    with pytest.raises(oauth.BadState):
        oauth.consume_state("pipedrive", row.state, user_id=integration_admin.pk)


@pytest.mark.parametrize("service", ["xero", "pipedrive"])
@responses.activate
def test_a_callback_with_another_users_state_changes_nothing(
    client, integration_admin, second_admin, service
):
    row = state_of(integration_admin, service)
    client.force_login(second_admin)
    page = client.get(reverse(f"connector:{service}-callback"), {"state": row.state, "code": "stolen"})
    assert page.status_code == 400 and b"another user" in page.content
    assert len(responses.calls) == 0  # the code was not exchanged
    row.refresh_from_db()
    assert row.used_at is None and not row.token_set
    assert not XeroConnection.objects.exists() and not PipedriveConnection.objects.exists()


def test_another_users_consent_cannot_be_picked(client, integration_admin, second_admin):
    row = state_of(integration_admin, "xero", token_set='{"access_token": "a"}')
    client.force_login(second_admin)
    url = reverse("connector:xero-pick", args=[row.state])
    assert client.get(url).status_code == 404
    assert client.post(url, {"tenant_id": "t-1"}).status_code == 404
    row.refresh_from_db()
    assert row.token_set and not XeroConnection.objects.exists()
