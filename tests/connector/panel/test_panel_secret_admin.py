"""The panel's JWT secret on the sync pair's page: write-only, stored encrypted, changed only by a user
who may change sync pairs."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from tests.connector.panel.conftest import PANEL_SECRET

pytestmark = pytest.mark.django_db


def test_the_pair_page_shows_the_endpoint_never_the_secret(admin_client, panel_pair):
    page = admin_client.get(f"/admin/connector/syncpair/{panel_pair.pk}/change/").content.decode()
    assert f"/pipedrive/panel/{panel_pair.key}/" in page and "pipedrive_panel_secret" in page
    assert PANEL_SECRET not in page
    with connection.cursor() as cursor:
        cursor.execute("SELECT pipedrive_panel_secret FROM connector_syncpair WHERE id = %s", [panel_pair.pk])
        stored = cursor.fetchone()[0]
    assert stored and PANEL_SECRET not in stored  # ciphertext at rest


def test_a_user_who_may_only_view_pairs_cannot_change_the_secret(client, django_user_model, panel_pair):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-12345", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncpair"))
    client.force_login(viewer)
    url = f"/admin/connector/syncpair/{panel_pair.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and PANEL_SECRET not in page.content.decode()
    answer = client.post(
        url, {"name": panel_pair.name, "pipedrive_panel_secret": "attacker-chosen-secret-VALUE-01"}
    )
    assert answer.status_code == 403
    panel_pair.refresh_from_db()
    assert panel_pair.pipedrive_panel_secret == PANEL_SECRET
