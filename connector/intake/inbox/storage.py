"""Storing received events: one transaction per request, redeliveries skipped by the unique key."""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from connector.intake.inbox.drain_requests import ask_for_drain_in_transaction
from connector.intake.inbox.pairs import ReceiverPair
from connector.intake.inbox.parsing import XeroEvent
from connector.intake.pipedrive_events import ENTITIES_WITH_LINKS, PipedriveEvent
from connector.models import WebhookEvent
from connector.sync.record_types import SYNCED_CATEGORIES

# In sync order; a credit note re-syncs the invoices and the contact it touches.
XERO_SYNCED_CATEGORIES = SYNCED_CATEGORIES  # the registry's (connector/sync/record_types.py)
Source = WebhookEvent.Source
Status = WebhookEvent.Status


@dataclass(frozen=True)
class _Row:
    """One inbox row to insert: the fields a receiver sets; the others take the model's defaults."""

    source: str
    tenant_id: str
    category: str
    resource_id: str
    event_type: str
    event_time: dt.datetime
    status: str
    reason: str
    payload: Any


def _xero_row(pair: ReceiverPair, event: XeroEvent) -> _Row:
    status, reason = Status.PENDING, ""
    if event.tenant_id != pair.xero_tenant_id:
        status, reason = Status.IGNORED, "the tenant is not joined to this pair"
    elif event.category not in XERO_SYNCED_CATEGORIES:
        status, reason = Status.IGNORED, f"category {event.category} is not synced"
    return _Row(
        Source.XERO,
        event.tenant_id,
        event.category,
        event.resource_id,
        event.event_type,
        event.event_time,
        status,
        reason,
        event.raw,
    )


def _pipedrive_row(pair: ReceiverPair, event: PipedriveEvent, body: dict) -> _Row:
    status, reason = Status.PENDING, ""
    if pair.pipedrive_company_id != event.company_id:
        status, reason = Status.IGNORED, "the company is not joined to this pair"
    elif event.entity not in ENTITIES_WITH_LINKS:
        status, reason = Status.IGNORED, f"{event.entity} events do not affect links"
    return _Row(
        Source.PIPEDRIVE,
        event.company_id,
        event.entity,
        event.entity_id,
        event.action,
        event.occurred_at,
        status,
        reason,
        body,
    )


def store_xero_batch(pair: ReceiverPair, events: list[XeroEvent]) -> int:
    """Store the batch in one transaction; returns how many events were pending work."""
    return _store(pair, [_xero_row(pair, event) for event in events])


def store_pipedrive_event(pair: ReceiverPair, event: PipedriveEvent, body: dict) -> int:
    return _store(pair, [_pipedrive_row(pair, event, body)])


_INSERT_COLUMNS = (
    "pair_id",
    "source",
    "tenant_id",
    "category",
    "resource_id",
    "event_type",
    "event_time",
    "status",
    "reason",
    "payload",
    "attempts",
    "lost_claims",
    "received_at",
    "claimed_at",
    "claim_token",
    "processed_at",
)


def _insert_rows(pair_id: int, rows: list[_Row]) -> int:
    """One ``INSERT … ON CONFLICT DO NOTHING`` (SQLite ≥ 3.24 and PostgreSQL): a redelivered event hits
    the unique key and is skipped. Values are prepared as the model's fields would prepare them
    (aware UTC times through the backend's adapter, the payload as JSON text); returns rows inserted."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    # PostgreSQL's jsonb column takes the JSON text through an explicit cast; SQLite stores it as is.
    payload_placeholder = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    placeholders = (
        "(" + ", ".join(payload_placeholder if c == "payload" else "%s" for c in _INSERT_COLUMNS) + ")"
    )
    params: list = []
    for row in rows:
        params += (
            pair_id,
            row.source,
            row.tenant_id,
            row.category,
            row.resource_id,
            row.event_type,
            ops.adapt_datetimefield_value(row.event_time),
            row.status,
            row.reason,
            json.dumps(row.payload, separators=(",", ":")),
            0,
            0,
            now,
            None,
            "",
            now if row.status == Status.IGNORED else None,
        )
    # Only quoted identifiers and placeholders are formatted in; every value is a parameter.
    sql = "INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT DO NOTHING".format(  # noqa: S608
        table=ops.quote_name(WebhookEvent._meta.db_table),
        columns=", ".join(ops.quote_name(c) for c in _INSERT_COLUMNS),
        values=", ".join([placeholders] * len(rows)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _store(pair: ReceiverPair, rows: list[_Row]) -> int:
    if not rows:
        return 0
    pending = sum(1 for row in rows if row.status == Status.PENDING)
    with transaction.atomic():
        _insert_rows(pair.pk, rows)
        if pending:
            ask_for_drain_in_transaction(pair.pk)
    return pending
