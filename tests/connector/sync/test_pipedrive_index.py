"""The local Pipedrive index: budget before listing, incremental refresh, full re-listing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.errors import BudgetExhausted
from connector.models import PipedriveIndexEntry, PipedriveIndexState
from connector.sync.contacts import sync_contacts
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_backfill_does_not_list_into_the_reserve_but_webhook_work_may(sync_pair, sandbox, settings):
    settings.PIPEDRIVE_DAILY_TOKENS = 500  # below the 1,000-token reserve kept for urgent work
    contact_id = sandbox.create_contact("Budget Ltd")
    with pytest.raises(BudgetExhausted):
        sync_contacts(sync_pair, [contact_id], trigger="backfill")
    assert sandbox.counts().pipedrive_calls == 0 and sandbox.organizations() == []
    assert sync_contacts(sync_pair, [contact_id], trigger="webhook")[contact_id].action == "created"


def test_an_old_index_is_refreshed_with_records_updated_since_and_later_listed_in_full(sync_pair, sandbox):
    connection = sync_pair.pipedrive_connection
    first = sandbox.create_contact("Kappa Ltd")
    sync_contacts(sync_pair, [first], trigger="webhook")
    state = PipedriveIndexState.objects.get(connection=connection)
    filled_at = state.filled_at

    # Made in Pipedrive without a webhook reaching us; a day later the index re-lists what changed.
    made = sandbox.pipedrive_create("organization", {"name": "Lambda Limited"})
    gone = sandbox.pipedrive_create("organization", {"name": "Mu Limited"})
    PipedriveIndexState.objects.filter(pk=state.pk).update(
        refreshed_at=timezone.now() - timedelta(hours=25), filled_at=filled_at - timedelta(hours=25)
    )
    later = sandbox.create_contact("Lambda Ltd")
    sandbox.reset_counters()
    assert sync_contacts(sync_pair, [later], trigger="webhook")[later].pipedrive_id == made
    counts = sandbox.counts()
    assert counts.pipedrive_calls_to("POST /api/v2/organizations") == 0 and counts.pipedrive_searches == 0
    state.refresh_from_db()
    assert state.filled_at < state.refreshed_at  # incremental: not a full listing
    assert PipedriveIndexEntry.objects.filter(record_id=gone).exists()

    # A week on, the full listing drops what was deleted in Pipedrive meanwhile.
    sandbox.pipedrive_delete("organization", gone)
    PipedriveIndexState.objects.filter(pk=state.pk).update(
        refreshed_at=timezone.now() - timedelta(days=2), filled_at=timezone.now() - timedelta(days=8)
    )
    sync_contacts(sync_pair, [first], trigger="webhook")
    state.refresh_from_db()
    assert state.filled_at == state.refreshed_at
    assert not PipedriveIndexEntry.objects.filter(record_id=gone).exists()
    assert PipedriveIndexEntry.objects.filter(record_id=made).exists()
