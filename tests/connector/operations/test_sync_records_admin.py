"""The sync record admin lists what was synced, read-only."""

import pytest
from django.utils import timezone

from audit.services import record_sync

pytestmark = pytest.mark.django_db


def test_sync_records_are_listed_and_read_only(admin_client):
    record = record_sync(
        pair=None,
        xero_type="contact",
        xero_id="c-1",
        outcome="failed",
        started_at=timezone.now(),
        payload={"name": "Acme"},
        reason="ValidationFailed: name is required",
        fields_mapped=["name"],
    )
    assert record.payload_size == len(b'{"name":"Acme"}')
    listing = admin_client.get("/admin/audit/syncrecord/")
    assert listing.status_code == 200
    assert b"c-1" in listing.content and b"name is required" in listing.content
    assert admin_client.get("/admin/audit/syncrecord/add/").status_code == 403
    page = admin_client.get(f"/admin/audit/syncrecord/{record.pk}/change/")
    assert page.status_code == 200 and b'name="xero_id"' not in page.content  # shown, not editable


def test_a_reason_quoting_a_secret_is_stored_redacted():
    from connector.sync.common import audit

    record = audit(
        None,
        "contact",
        "c-2",
        action="failed",
        started_at=timezone.now(),
        reason='ValidationFailed: {"http_auth_password": "pw-NOT-TO-KEEP-1"} api_token=tok-NOT-TO-KEEP',
    )
    record.refresh_from_db()
    assert "NOT-TO-KEEP" not in record.reason and record.reason.startswith("ValidationFailed")
