"""Asking for a drain of a pair's inbox: one task on its way at a time, enqueued after the commit."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.tasks import async_task

from connector.intake.inbox.pairs import db_column
from connector.models import SyncPair


def request_drain(pair_id: int, force: bool = False) -> bool:
    """Enqueue one drain of the pair unless one was requested recently and has not started yet.

    A drain clears ``drain_requested_at`` when it starts and then keeps claiming until nothing
    is pending, so a request skipped here is always covered by that drain. A request older than
    the sweep delay is treated as lost (its broker message or worker died) and is sent again.
    Call after the commit of whatever made rows pending.
    """
    if not _mark_drain_requested(pair_id, force=force):
        return False
    enqueue_drain(pair_id)
    return True


def _mark_drain_requested(pair_id: int, force: bool = False) -> bool:
    """Set ``drain_requested_at`` unless a fresh request is pending; True when this call set it."""
    # Raw SQL for the receiver's sake: the ORM's query building costs ten times the UPDATE itself.
    ops, quote = connection.ops, connection.ops.quote_name
    now = timezone.now()
    stale = now - timedelta(seconds=settings.INBOX_SWEEP_AFTER_SECONDS)
    flag = quote(db_column(SyncPair._meta.get_field("drain_requested_at")))
    table, pk = quote(SyncPair._meta.db_table), quote(db_column(SyncPair._meta.pk))
    sql = f"UPDATE {table} SET {flag} = %s WHERE {pk} = %s"  # noqa: S608 - quoted identifiers only
    params = [ops.adapt_datetimefield_value(now), pair_id]
    if not force:
        sql += f" AND ({flag} IS NULL OR {flag} < %s)"
        params.append(ops.adapt_datetimefield_value(stale))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount > 0


def enqueue_drain(pair_id: int) -> None:
    """Send one drain task for the pair (no check: callers set the flag first)."""
    async_task("connector.tasks.drain_pair", pair_id, task_name=f"drain inbox of pair {pair_id}")


def request_drain_on_commit(pair_id: int, force: bool = False) -> None:
    transaction.on_commit(lambda: request_drain(pair_id, force=force))


def ask_for_drain_in_transaction(pair_id: int) -> None:
    """Ask for a drain of rows this open transaction made pending, enqueueing after the commit.

    On SQLite the flag is set inside the transaction: the insert holds the database's only write
    lock until the commit, so a drain cannot clear the flag (its first step) between our check and
    our commit; a skipped request is therefore always covered by a drain that starts later and
    sees our rows. One write transaction per batch, and no enqueue when a drain is already on its way.
    PostgreSQL has no such lock (a drain could clear the flag and finish before our rows are
    visible), so there the check stays after the commit, as ``request_drain`` documents.
    """
    if connection.vendor == "sqlite":
        if _mark_drain_requested(pair_id):
            transaction.on_commit(lambda: enqueue_drain(pair_id))
    else:
        transaction.on_commit(lambda: request_drain(pair_id))
