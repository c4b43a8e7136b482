"""One writer per record: concurrent syncs of the same contacts create each organization once."""

import threading

import pytest
from django.db import connection as db_connection
from django.db import connections as db_connections

from connector.models import SyncPair
from connector.sync.contacts import sync_contacts
from mapping.models import RecordLink
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS


def test_four_threads_syncing_the_same_20_contacts_create_20_organizations(sync_pair, sandbox):
    ids = [
        sandbox.create_contact(f"Thread Customer {n:02d}", email=f"buyer{n:02d}@thread.example")
        for n in range(20)
    ]
    # Slow Pipedrive answers widen the window in which unserialized workers would both create.
    sandbox.set_faults("pipedrive", latency_ms=30)
    errors, outcomes = [], []
    start = threading.Barrier(4)

    def worker():
        try:
            start.wait()
            outcomes.append(sync_contacts(SyncPair.objects.get(pk=sync_pair.pk), ids, trigger="webhook"))
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors
    created = sum(1 for run in outcomes for o in run.values() if o.action == "created")
    assert {o.status for run in outcomes for o in run.values()} == {"done"}
    assert len(sandbox.organizations()) == 20 and created == 20, sandbox.counts()
    assert len(sandbox.persons()) == 20
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="contact").count() == 20


def _sync_in_child(pair_id, ids, queue):
    """A separate process with its own database connection (PostgreSQL test)."""
    import django

    django.setup()
    db_connections.close_all()
    try:
        outcomes = sync_contacts(SyncPair.objects.get(pk=pair_id), ids, trigger="webhook")
        queue.put(sorted(o.action for o in outcomes.values() if o.status == "done"))
    except Exception as exc:  # reported to the parent
        queue.put(f"error: {exc!r}")
    finally:
        db_connections.close_all()


@pytest.mark.postgres
def test_four_processes_syncing_the_same_200_contacts_create_200_organizations(
    sync_pair, sandbox, monkeypatch
):
    import multiprocessing

    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (advisory locks across processes)")
    ids = [sandbox.create_contact(f"Process Customer {n:03d}") for n in range(200)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    db_connection.close()
    processes = [context.Process(target=_sync_in_child, args=(sync_pair.pk, ids, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()

    assert not [r for r in results if isinstance(r, str)], results
    assert all(len(r) == 200 for r in results), [len(r) for r in results]
    created = sum(r.count("created") for r in results)
    organizations = sandbox.organizations()
    assert len(organizations) == 200 and created == 200, (len(organizations), created, sandbox.counts())
    assert len({o["name"] for o in organizations}) == 200
    assert RecordLink.objects.filter(pair=sync_pair, xero_type="contact").count() == 200
