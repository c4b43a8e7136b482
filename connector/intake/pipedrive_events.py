"""Pipedrive webhook events: v1 and v2 bodies parsed into one ``PipedriveEvent``, and applied to links.

Pipedrive events never trigger a sync; they only keep ``RecordLink`` rows true:
- a merge re-points the links of the merged record to the survivor (v2: ``delete`` with
  ``meta.merged_to_id`` and ``change`` with ``meta.merged_from_id``; v1: ``merged.<obj>`` about the
  survivor, and ``deleted.<obj>`` about the merged record, which carries no survivor id);
- a delete of an organization, person or deal drops or flags its links, per the pair option
  ``on_pipedrive_delete`` ("drop": the next sync re-finds or recreates; "flag", the default: the link
  is kept with state "deleted" for the admin, and the sync treats it as missing).
Everything else is acknowledged and ignored.
"""

import datetime as dt
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, overload

from django.db import transaction

from connector.options import pair_options
from connector.sync import pipedrive_index
from connector.sync.common import record_lock
from mapping.models import RecordLink

ENTITIES_WITH_LINKS = ("organization", "person", "deal")
V1_ACTIONS = {"added": "create", "updated": "change", "deleted": "delete", "merged": "merge"}
V2_ACTIONS = ("create", "change", "delete")
MAX_ID_LENGTH = 64  # WebhookEvent.resource_id
MAX_NAME_LENGTH = 40  # WebhookEvent.category and event_type


class InvalidPipedriveBody(ValueError):
    """The body is not a Pipedrive v1 or v2 webhook; the message says which part is wrong."""


@dataclass(frozen=True)
class PipedriveEvent:
    """One Pipedrive webhook, whichever payload version it came in."""

    version: int  # 1 or 2
    action: str  # create | change | delete | merge (v1 "merged" only)
    entity: str  # organization, person, deal, ... as Pipedrive names it
    entity_id: str
    company_id: str
    occurred_at: dt.datetime  # aware UTC
    merged_to_id: str | None = None  # on the delete of a merged record (v2)
    merged_from_id: str | None = None  # on the survivor of a merge (v2 change; v1 if given)
    data: dict | None = None  # current state (v2 data, v1 current)
    previous: dict | None = None


@dataclass(frozen=True)
class EventOutcome:
    """What applying one event did; the same shape as the sync service's RecordOutcome."""

    status: str  # "done" | "ignored" | "failed"
    reason: str = ""


# ---------------------------------------------------------------- parsing


@overload
def _id(value: Any, where: str, required: Literal[True] = True) -> str: ...
@overload
def _id(value: Any, where: str, required: bool) -> str | None: ...
def _id(value: Any, where: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidPipedriveBody(f"{where} must be an id (a number or a string)")
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH:
        raise InvalidPipedriveBody(f"{where} must be a non-empty id of at most {MAX_ID_LENGTH} characters")
    return text


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise InvalidPipedriveBody(f"{where} must be a short non-empty string")
    return value.strip().lower()


def _object_or_none(value: Any, where: str) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    if where.startswith("current") and isinstance(value, list):  # v1 "user" events send a list
        return value[0] if value and isinstance(value[0], dict) else None
    raise InvalidPipedriveBody(f"{where} must be an object or null")


def _timestamp(meta: dict, version: int) -> dt.datetime:
    """meta.timestamp: ISO 8601 (v2 docs) or epoch seconds (v1, some v2); v1's timestamp_micro is finer."""
    micro = meta.get("timestamp_micro") if version == 1 else None
    raw = meta.get("timestamp")
    try:
        if isinstance(micro, int) and not isinstance(micro, bool):
            return dt.datetime.fromtimestamp(micro / 1_000_000, tz=dt.UTC)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return dt.datetime.fromtimestamp(raw, tz=dt.UTC)
        if isinstance(raw, str) and raw.strip():
            text = raw.strip()
            if text.isdigit():
                return dt.datetime.fromtimestamp(int(text), tz=dt.UTC)
            moment = dt.datetime.fromisoformat(text)
            return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidPipedriveBody("meta.timestamp is not a valid time") from exc
    raise InvalidPipedriveBody("meta.timestamp is missing")


def parse_pipedrive_body(body: Any) -> PipedriveEvent:
    """Read a decoded v1 or v2 webhook body; raises InvalidPipedriveBody when it is neither."""
    if not isinstance(body, dict):
        raise InvalidPipedriveBody("the body must be a JSON object")
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise InvalidPipedriveBody("meta must be an object")
    if "event" in body or meta.get("v") == 1:
        return _parse_v1(body, meta)
    return _parse_v2(body, meta)


def _parse_v2(body: dict, meta: dict) -> PipedriveEvent:
    action = _name(meta.get("action"), "meta.action")
    if action not in V2_ACTIONS:
        raise InvalidPipedriveBody(f"meta.action must be one of {', '.join(V2_ACTIONS)}")
    return PipedriveEvent(
        version=2,
        action=action,
        entity=_name(meta.get("entity"), "meta.entity"),
        entity_id=_id(meta.get("entity_id"), "meta.entity_id"),
        company_id=_id(meta.get("company_id"), "meta.company_id"),
        occurred_at=_timestamp(meta, 2),
        merged_to_id=_id(meta.get("merged_to_id"), "meta.merged_to_id", required=False),
        merged_from_id=_id(meta.get("merged_from_id"), "meta.merged_from_id", required=False),
        data=_object_or_none(body.get("data"), "data"),
        previous=_object_or_none(body.get("previous"), "previous"),
    )


def _parse_v1(body: dict, meta: dict) -> PipedriveEvent:
    event = body.get("event")
    if not isinstance(event, str) or event.count(".") != 1:
        raise InvalidPipedriveBody('event must look like "updated.deal"')
    v1_action, entity = (part.strip().lower() for part in event.split("."))
    if v1_action not in V1_ACTIONS:
        raise InvalidPipedriveBody(f"event action must be one of {', '.join(V1_ACTIONS)}")
    current = _object_or_none(body.get("current"), "current")
    previous = _object_or_none(body.get("previous"), "previous")
    record_id = meta.get("id")
    if record_id is None:
        record_id = (current or previous or {}).get("id")
    merged_from = meta.get("merged_from_id")
    if merged_from is None and current:
        merged_from = current.get("merge_what_id")  # present on some v1 merge payloads
    return PipedriveEvent(
        version=1,
        action=V1_ACTIONS[v1_action],
        entity=_name(entity, "event object"),
        entity_id=_id(record_id, "meta.id"),
        company_id=_id(meta.get("company_id"), "meta.company_id"),
        occurred_at=_timestamp(meta, 1),
        merged_from_id=_id(merged_from, "merged_from_id", required=False),
        data=current,
        previous=previous,
    )


# ---------------------------------------------------------------- applying


def delete_option(pair) -> str:
    return pair_options(pair).on_pipedrive_delete


def _number(pipedrive_id: str) -> int | None:
    """Pipedrive's ids of organizations, persons and deals are integers (a BigIntegerField here)."""
    try:
        number = int(pipedrive_id)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _links(pair, entity: str, pipedrive_id: str):
    number = _number(pipedrive_id)
    if number is None:
        return RecordLink.objects.none()
    return RecordLink.objects.filter(pair=pair, pipedrive_type=entity, pipedrive_id=number)


def _repoint(pair, entity: str, from_id: str, to_id: str) -> EventOutcome:
    survivor = _number(to_id)
    if survivor is None:
        return EventOutcome("ignored", f"merge survivor id {to_id!r} is not a Pipedrive id")
    # The payload hash is cleared so the next sync writes the Xero data onto the survivor.
    moved = _links(pair, entity, from_id).update(
        pipedrive_id=survivor, state=RecordLink.State.LINKED, payload_hash=""
    )
    if not moved:
        return EventOutcome("ignored", f"merged {entity} {from_id} had no links")
    return EventOutcome("done", f"merge: {moved} link(s) re-pointed from {entity} {from_id} to {to_id}")


def _deleted(pair, entity: str, record_id: str) -> EventOutcome:
    links = _links(pair, entity, record_id)
    option = delete_option(pair)
    if option == "drop":
        count, _ = links.delete()
        verb = "dropped"
    else:
        count = links.exclude(state=RecordLink.State.DELETED).update(state=RecordLink.State.DELETED)
        verb = "flagged deleted"
    if not count:
        return EventOutcome("ignored", f"deleted {entity} {record_id} had no live links")
    return EventOutcome("done", f"delete: {count} link(s) of {entity} {record_id} {verb}")


def _observe_in_index(pair, event: PipedriveEvent) -> None:
    """Keep the local index of the company's organizations and persons true to the event."""
    if event.action == "delete" or event.merged_to_id is not None:
        action = "delete"  # deleted, or merged away into another record
    elif event.action == "merge":
        action = "change"  # v1 "merged" is about the survivor, which stays
    else:
        action = event.action
    pipedrive_index.observe_pipedrive_event(
        pair.pipedrive_connection, event.entity, action, event.entity_id, event.data
    )


def apply_pipedrive_event(pair, event: PipedriveEvent) -> EventOutcome:
    """Apply one Pipedrive event to the pair's record links; the one place Pipedrive events act.

    Idempotent: a redelivered or replayed event finds the links already changed.
    """
    if event.entity not in ENTITIES_WITH_LINKS:
        return EventOutcome("ignored", f"{event.entity} events do not affect links")
    _observe_in_index(pair, event)
    if event.merged_to_id is not None:
        gone, survivor = event.entity_id, event.merged_to_id
    elif event.merged_from_id is not None:
        gone, survivor = event.merged_from_id, event.entity_id
    elif event.action == "delete":
        gone, survivor = event.entity_id, None
    else:
        return EventOutcome("ignored", f"{event.action} of {event.entity}: no link change needed")
    # Under the writer locks of the Xero records whose links change, so a sync of one of them
    # running now cannot write the old Pipedrive record back into a re-pointed or flagged link.
    with _record_locks(pair, _links(pair, event.entity, gone)), transaction.atomic():
        if survivor is None:
            return _deleted(pair, event.entity, gone)
        return _repoint(pair, event.entity, gone, survivor)


def _lock_target(link: RecordLink) -> tuple[str, str]:
    """The Xero record whose sync writes this link (a contact person's is its contact's)."""
    if link.xero_type == RecordLink.XeroType.CONTACT_PERSON:
        return "contact", link.xero_id.split(":", 1)[0]
    return link.xero_type, link.xero_id


@contextmanager
def _record_locks(pair, links):
    targets = sorted({_lock_target(link) for link in links})  # one order everywhere: no deadlock
    with ExitStack() as stack:
        for xero_type, xero_id in targets:
            stack.enter_context(record_lock(pair, xero_type, xero_id))
        yield
