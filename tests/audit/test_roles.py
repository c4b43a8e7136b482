"""The roles the data migration makes: "Finance" edits mapping rows and credit limits, reads sync
records and inbox events and may replay, but gets 403 on connections, pairs and the task queue;
"Integration admin" manages connections and pairs."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.services import record_sync
from mapping.models import StageMapping

pytestmark = pytest.mark.django_db

CONNECTION_PAGES = [
    "admin:connector_syncpair_changelist",
    "admin:connector_syncpair_add",
    "admin:connector_xeroconnection_changelist",
    "admin:connector_pipedriveconnection_changelist",
    "admin:connector_pipedriveconnection_add",
    "admin:django_q_schedule_changelist",
]
FINANCE_PAGES = [
    "admin:mapping_fieldmapping_changelist",
    "admin:mapping_stagemapping_add",
    "admin:mapping_creditlimit_add",
    "admin:audit_syncrecord_changelist",
    "admin:connector_webhookevent_changelist",
    "audit:health",
    "admin:index",
]


def test_the_groups_carry_the_permissions(roles):
    finance = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    assert {"change_stagemapping", "add_creditlimit", "view_syncrecord", "replay_syncrecord"} <= finance
    assert {"view_webhookevent"} <= finance
    assert not {c for c in finance if "connection" in c or "syncpair" in c}
    admins = set(Group.objects.get(name="Integration admin").permissions.values_list("codename", flat=True))
    assert {
        "change_syncpair",
        "add_xeroconnection",
        "change_pipedriveconnection",
        "replay_syncrecord",
    } <= admins


def test_finance_edits_mappings_and_reads_records_but_gets_403_on_connection_pages(client, finance_user):
    client.force_login(finance_user)
    for name in CONNECTION_PAGES:
        assert client.get(reverse(name)).status_code == 403, name
    for name in FINANCE_PAGES:
        assert client.get(reverse(name)).status_code == 200, name

    row = StageMapping.objects.get(pair=None, kind="invoice_status", xero_value="AUTHORISED")
    changed = client.post(
        reverse("admin:mapping_stagemapping_change", args=[row.pk]),
        {"kind": "invoice_status", "xero_value": "AUTHORISED", "pipeline_name": "Xero invoices",
         "stage_name": "Awaiting cash", "deal_status": "", "lost_reason": "", "enabled": "on"},
    )  # fmt: skip
    assert changed.status_code == 302, changed.context["adminform"].form.errors
    row.refresh_from_db()
    assert row.stage_name == "Awaiting cash"


def test_finance_may_replay_and_staff_without_the_permission_may_not(client, finance_user, django_user_model):
    record = record_sync(pair=None, xero_type="contact", xero_id="c-1", outcome="failed", reason="test")
    client.force_login(finance_user)
    page = client.get(reverse("admin:audit_syncrecord_change", args=[record.pk]))
    assert page.status_code == 200 and b"What came in" in page.content
    # A record whose pair is gone cannot be replayed: said so, nothing written.
    client.post(reverse("admin:audit_syncrecord_replay", args=[record.pk]))
    assert record.replays.count() == 0

    clerk = django_user_model.objects.create_user("clerk", "c@example.com", "pw-for-tests-1", is_staff=True)
    clerk.user_permissions.add(
        *Group.objects.get(name="Finance").permissions.exclude(codename="replay_syncrecord")
    )
    client.force_login(clerk)
    assert client.post(reverse("admin:audit_syncrecord_replay", args=[record.pk])).status_code == 403
    assert (
        b"Replay from Xero now"
        not in client.get(reverse("admin:audit_syncrecord_change", args=[record.pk])).content
    )


def test_integration_admin_opens_connection_pages(client, integration_admin):
    client.force_login(integration_admin)
    for name in CONNECTION_PAGES:
        assert client.get(reverse(name)).status_code == 200, name


def test_the_health_page_is_for_staff_only(client):
    page = client.get(reverse("audit:health"))
    assert page.status_code == 302 and "/admin/login/" in page["Location"]
    assert reverse("audit:health") == "/admin/health/"
