"""The sync record writer on its own: what a failure keeps (class, status, message, traceback, all
redacted), how field values are kept under each AUDIT_PERSONAL_DATA mode, and the cause a drain or a
replay attaches to the rows written inside it."""

import pytest

from audit.models import SyncRecord
from audit.services import error_details, record_sync, replay_cause, stored_value, sync_cause
from connector.errors import ServerError, ValidationFailed

pytestmark = pytest.mark.django_db


def raised(error):
    try:
        raise error
    except Exception as caught:
        return caught


def test_a_failure_keeps_class_status_message_and_a_redacted_traceback():
    details = error_details(
        raised(ValidationFailed('bad field "x"; api_token=tok-NOT-TO-KEEP-123', status=422))
    )
    assert details["error_class"] == "ValidationFailed" and details["error_status"] == 422
    assert "NOT-TO-KEEP" not in details["error_message"] + details["traceback"]
    assert details["traceback"].startswith("Traceback")
    assert error_details(raised(ServerError("pipedrive 503: try later")))["error_status"] == 503


def test_the_exception_being_handled_is_recorded_for_a_failure():
    try:
        raise ServerError("xero 500: boom")
    except ServerError:
        record = record_sync(pair=None, xero_type="contact", xero_id="c", outcome="deferred", reason="boom")
    assert (record.error_class, record.error_status) == ("ServerError", 500)
    ok = record_sync(pair=None, xero_type="contact", xero_id="c", outcome="created")
    assert ok.error_class == "" and ok.traceback == ""


@pytest.mark.parametrize(
    ("mode", "value", "kept"),
    [
        ("full", "Jane Doe", "Jane Doe"),
        ("masked", "Jane Doe", "J••• D••"),
        ("masked", "2026-01-31", "2026-01-31"),
        ("masked", 120.5, 120.5),
        ("none", "Jane Doe", None),
        ("full", "Bearer abcdefghijklmnop", "Bearer [redacted]"),
    ],
)
def test_field_values_follow_the_personal_data_mode(mode, value, kept):
    assert stored_value(value, mode) == kept


def test_the_cause_of_a_drain_and_of_a_replay_is_attached_to_the_rows_written_inside():
    with sync_cause("INVOICE", {"ABC-1": [7, 9]}, {"ABC-1": 3}):
        mine = record_sync(pair=None, xero_type="invoice", xero_id="abc-1", outcome="created")
        other = record_sync(pair=None, xero_type="contact", xero_id="abc-1", outcome="created")
    assert (mine.inbox_event_ids, mine.attempt) == ([7, 9], 3)
    assert (other.inbox_event_ids, other.attempt) == ([], 1)  # the invoice's events, not the contact's

    with replay_cause([mine]) as cause:
        again = record_sync(
            pair=None, xero_type="invoice", xero_id="ABC-1", outcome="updated", trigger="webhook"
        )
    assert (again.trigger, again.replay_of_id, again.attempt) == ("replay", mine.pk, 4)
    assert cause.written == [again]
    assert SyncRecord.objects.count() == 3
