"""The index state row is created once per connection even when two workers race to create it."""

import pytest
from django.db import IntegrityError

from connector.connections.services import pipedrive_client
from connector.models import PipedriveIndexState
from connector.sync import pipedrive_index
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_ensure_index_survives_losing_the_state_row_race(sync_pair, sandbox, monkeypatch):
    connection = sync_pair.pipedrive_connection
    client = pipedrive_client(connection)
    original = PipedriveIndexState.objects.get_or_create
    raced = []

    PipedriveIndexState.objects.create(connection=connection)  # the other worker's row, committed

    def get_or_create(**kwargs):
        if not raced:  # our SELECT ran before the other worker's INSERT, so ours collides
            raced.append(True)
            raise IntegrityError("UNIQUE constraint failed: connector_pipedriveindexstate.connection_id")
        return original(**kwargs)

    monkeypatch.setattr(PipedriveIndexState.objects, "get_or_create", get_or_create)
    state = pipedrive_index.ensure_index(connection, client)

    assert state is not None and state.filled_at is not None
    assert PipedriveIndexState.objects.filter(connection=connection).count() == 1


@pytest.fixture(autouse=True)
def _no_retries(settings):
    settings.API_MAX_RETRIES = 0
