"""What every sync shares: outcomes, the per-record writer lock, record links, writes that skip
unchanged payloads, and the audit row of each record sync."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis.exceptions as redis_errors
from django import db as django_db
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record_sync
from connector.errors import ConnectorError, NotFound, ServerError
from connector.locks import named_lock
from connector.logging import redact
from mapping.models import RecordLink

logger = logging.getLogger(__name__)


@dataclass
class RecordOutcome:
    """How one record sync ended: status done/failed/ignored/retry, why, and what it touched.

    "retry": a transient problem (5xx, timeout after the client's retries); the drain tries the
    record again later. "failed": a permanent problem no retry would get past."""

    status: str
    reason: str = ""
    pipedrive_id: int | None = None
    action: str = ""  # created / updated / unchanged / skipped / deleted


class Outcomes(dict):
    """``{xero id: RecordOutcome}`` that tells ``on_outcome(xero_id, outcome)`` of each outcome as it
    is set, so the drain finishes a record's inbox rows as soon as its sync ends (a worker killed
    later in the batch then leaves only the unfinished records to redo)."""

    def __init__(self, on_outcome=None):
        super().__init__()
        self.on_outcome = on_outcome

    def __setitem__(self, xero_id, outcome):
        super().__setitem__(xero_id, outcome)
        if self.on_outcome is not None:
            self.on_outcome(xero_id, outcome)


class SyncProblem(ConnectorError):
    """This record cannot be synced as things stand; the message says what to do."""


# Per record, transient: the record is tried again later (RecordOutcome "retry"). Besides the APIs'
# 5xx and time-outs, the connector's own services going away for a moment (the database or Redis
# restarting) must not mark a record failed for good.
RETRY_ERRORS = (
    ServerError,
    django_db.OperationalError,
    django_db.InterfaceError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
)


def retry_outcome(reason: str, pipedrive_id: int | None = None) -> RecordOutcome:
    """The outcome of a transient failure (audited as "deferred")."""
    return RecordOutcome("retry", reason[:1000], pipedrive_id=pipedrive_id, action="deferred")


@dataclass
class Write:
    """The result of ``write_record``: the Pipedrive id, what happened, and the payload sent (if any)."""

    pipedrive_id: int
    action: str  # created / updated / unchanged
    record: dict | None = None
    sent: dict | None = field(default=None)


# --- One writer per record -------------------------------------------------------------


@contextmanager
def record_lock(pair, xero_type: str, xero_id: str):
    """Serialize syncs of one Xero record (``connector.locks.named_lock``), so two workers cannot both
    create it."""
    with named_lock(f"{pair.pk}:{xero_type}:{xero_id}"):
        yield


# --- Record links ------------------------------------------------------------------------


def get_link(pair, xero_type: str, xero_id: str, pipedrive_type: str) -> RecordLink | None:
    return RecordLink.objects.filter(
        pair=pair, xero_type=xero_type, xero_id=str(xero_id), pipedrive_type=pipedrive_type
    ).first()


def live_link(pair, xero_type: str, xero_id: str, pipedrive_type: str) -> RecordLink | None:
    """The link if it still points at a Pipedrive record (not flagged as deleted there)."""
    link = get_link(pair, xero_type, xero_id, pipedrive_type)
    if link and link.state == RecordLink.State.LINKED and link.pipedrive_id:
        return link
    return None


def linked_id(pipedrive_id: int | None) -> int:
    """The Pipedrive id of a link read as LINKED (``live_link``, or a ``pipedrive_id__isnull=False``
    filter): such a link always has one, so None here is a broken invariant, not a missing record."""
    if pipedrive_id is None:
        raise ValueError("a linked record link has no Pipedrive id")
    return int(pipedrive_id)


def mark_creating(pair, xero_type, xero_id, pipedrive_type, *, absent: bool = False) -> RecordLink:
    """Record that a create is about to be sent. Should its answer be lost (timeout, worker killed),
    the next sync finds the link in state "creating" and looks for the record before creating one.
    ``absent``: the caller read no link under the record's lock, so one INSERT does (should a row
    have appeared all the same, it is updated as without the hint)."""
    if absent:
        try:
            with transaction.atomic():
                return RecordLink.objects.create(
                    pair=pair, xero_type=xero_type, xero_id=str(xero_id), pipedrive_type=pipedrive_type,
                    pipedrive_id=None, payload_hash="", state=RecordLink.State.CREATING,
                )  # fmt: skip
        except IntegrityError:
            pass
    link, _ = RecordLink.objects.update_or_create(
        pair=pair,
        xero_type=xero_type,
        xero_id=str(xero_id),
        pipedrive_type=pipedrive_type,
        defaults={"pipedrive_id": None, "payload_hash": "", "state": RecordLink.State.CREATING},
    )
    return link


def was_creating(pair, xero_type, xero_id, pipedrive_type) -> bool:
    """Whether a create of this record was sent and its answer never seen."""
    link = get_link(pair, xero_type, xero_id, pipedrive_type)
    return link is not None and link.state == RecordLink.State.CREATING


def save_link(pair, xero_type, xero_id, pipedrive_type, pipedrive_id, payload_hash="", *,
              link: RecordLink | None = None) -> RecordLink:  # fmt: skip
    """The link now points at ``pipedrive_id`` with the payload last written. ``link``: this link's
    row as the caller read or made it under the record's lock (one UPDATE by its id; should it have
    gone meanwhile, the row is made as without it)."""
    if link is not None and link.pk:
        now = timezone.now()
        values = {
            "pipedrive_id": pipedrive_id,
            "payload_hash": payload_hash,
            "state": RecordLink.State.LINKED,
            "last_synced_at": now,
        }
        same = (link.pair_id, link.xero_type, link.xero_id, link.pipedrive_type) == (
            pair.pk,
            xero_type,
            str(xero_id),
            pipedrive_type,
        )
        if same and RecordLink.objects.filter(pk=link.pk).update(**values, updated_at=now):
            for name, value in values.items():
                setattr(link, name, value)
            link.updated_at = now
            return link
    link, _ = RecordLink.objects.update_or_create(
        pair=pair,
        xero_type=xero_type,
        xero_id=str(xero_id),
        pipedrive_type=pipedrive_type,
        defaults={
            "pipedrive_id": pipedrive_id,
            "payload_hash": payload_hash,
            "state": RecordLink.State.LINKED,
            "last_synced_at": timezone.now(),
        },
    )
    return link


# --- Writes ----------------------------------------------------------------------------


def write_record(client, entity: str, payload: dict, payload_hash: str, *, existing_id=None,
                 last_hash: str = "") -> Write:  # fmt: skip
    """Create, update or (when the payload is the one last written) leave a Pipedrive record.

    ``existing_id`` is the matched record (link, index or search); ``last_hash`` the hash of
    the payload last written to it. A matched record deleted in Pipedrive meanwhile (404) is
    created anew.
    """
    if existing_id and last_hash and last_hash == payload_hash:
        return Write(int(existing_id), "unchanged")
    if existing_id:
        try:
            record = client.update(entity, existing_id, payload)
            return Write(int(record["id"]), "updated", record, payload)
        except NotFound:
            logger.info("Pipedrive %s %s is gone: creating it anew", entity, existing_id)
    record = client.create(entity, payload)
    return Write(int(record["id"]), "created", record, payload)


# --- Audit ------------------------------------------------------------------------------


AUDIT_OUTCOMES = {"created", "updated", "unchanged", "skipped", "deferred", "failed"}


def audit(pair, xero_type, xero_id, *, action, started_at, trigger="webhook", pipedrive_type="",
          pipedrive_id=None, reason="", payload=None, fields_mapped=(), source=None, error=None,
          rules=None):  # fmt: skip
    """One audit row per record sync (audit.services keeps the payload field by field, never whole).
    ``source`` is the Xero record (for its label); ``error`` the exception of a failure; ``rules`` the
    run's field rules for ``pipedrive_type`` (each field's Xero source, name and row, read once per run)."""
    mapped_sources = None if rules is None else {rule.pipedrive_field: rule for rule in rules}
    return record_sync(
        pair=pair,
        xero_type=xero_type,
        xero_id=xero_id,
        outcome=action if action in AUDIT_OUTCOMES else "updated",
        started_at=started_at,
        trigger=trigger,
        pipedrive_type=pipedrive_type,
        pipedrive_id=pipedrive_id,
        reason=redact(reason)[:2000],  # an API error message may quote a request
        payload=payload,
        fields_mapped=list(fields_mapped),
        source=source,
        error=error,
        mapped_sources=mapped_sources,
    )
