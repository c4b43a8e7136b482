"""Activities (v2 ``/activities``): validation, the v2 object, create/update/delete and the list.

Pipedrive sends no webhook the sandbox emulates for activities (the connector subscribes to
organizations, persons and deals), so none is queued here.
"""

import datetime as dt
import re

from django.db import transaction
from django.db.models import F

from sandbox import clock
from sandbox.pipedrive import spec
from sandbox.pipedrive.models import Activity, Company, Entity, User
from sandbox.pipedrive.services.common import ApiError, rfc3339
from sandbox.pipedrive.services.paging import (
    decode_position,
    encode_position,
    page_limit,
    parse_time,
    record_page,
)
from sandbox.pipedrive.services.records import body_int, get_record

SPEC_PATH = "/activities/{id}"
# Body fields kept as sent in ``attributes`` (openapi-v2.yaml, POST /activities); the rest have columns.
ATTRIBUTES = {
    "lead_id",
    "project_id",
    "busy",
    "location",
    "participants",
    "attendees",
    "public_description",
    "priority",
}
COLUMNS = {"subject", "type", "owner_id", "deal_id", "person_id", "org_id", "due_date", "due_time"}
COLUMNS |= {"duration", "done", "note"}
HOURS_MINUTES = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
LINKS = (("deal_id", Entity.DEAL), ("person_id", Entity.PERSON), ("org_id", Entity.ORGANIZATION))


def serialize_activity(activity: Activity) -> dict:
    """The v2 object, as GET /api/v2/activities/{id} returns it."""
    data = {
        "id": activity.id,
        "subject": activity.subject,
        "type": activity.type,
        "owner_id": activity.owner_id,
        "creator_user_id": activity.creator_id,
        "is_deleted": activity.is_deleted,
        "add_time": rfc3339(activity.add_time),
        "update_time": rfc3339(activity.update_time),
        "deal_id": activity.deal_id,
        "person_id": activity.person_id,
        "org_id": activity.org_id,
        "due_date": activity.due_date.isoformat() if activity.due_date else None,
        "due_time": activity.due_time or None,
        "duration": activity.duration or None,
        "busy": activity.attributes.get("busy", False),
        "done": activity.done,
        "marked_as_done_time": rfc3339(activity.marked_as_done_time),
        "participants": activity.attributes.get("participants")
        or ([{"person_id": activity.person_id, "primary": True}] if activity.person_id else []),
        "note": activity.note or None,
        **{k: v for k, v in activity.attributes.items() if k in ATTRIBUTES - {"busy", "participants"}},
    }
    data.pop("attendees", None)  # only with include_fields=attendees
    # The spec marks these fields non-nullable: absent beats null.
    return {k: v for k, v in spec.complete(data, "v2", SPEC_PATH).items() if v is not None}


def _text(body: dict, name: str, limit: int | None = None) -> str:
    value = body[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    if limit and len(value) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters")
    return value


def _apply(activity: Activity, body, company: Company, creating: bool) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    unknown = set(body) - ATTRIBUTES - COLUMNS
    if unknown:
        raise ApiError(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
    if "type" in body:
        kind = _text(body, "type", 30)
        if kind not in Activity.TYPES:
            raise ApiError(400, f"Activity type {kind!r} not found: one of {', '.join(Activity.TYPES)}")
        activity.type = kind
    if "subject" in body:
        activity.subject = _text(body, "subject", 255)
    if not activity.subject.strip():
        if not creating and "subject" in body:
            raise ApiError(400, "subject must not be empty")
        activity.subject = activity.type.capitalize()  # Pipedrive names an untitled activity by its type
    if "due_date" in body:
        raw = _text(body, "due_date")
        try:
            activity.due_date = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            raise ApiError(400, "due_date must be a date (YYYY-MM-DD)") from None
    for name in ("due_time", "duration"):
        if name in body:
            value = _text(body, name)
            if value and not HOURS_MINUTES.match(value):
                raise ApiError(400, f"{name} must be HH:MM")
            setattr(activity, name, value)
    if "note" in body:
        activity.note = _text(body, "note")
    if "owner_id" in body:
        owner_id = body_int(body["owner_id"], "owner_id")
        owner = User.objects.filter(company=company, id=owner_id).first() if owner_id is not None else None
        if owner is None:
            raise ApiError(400, "Owner not found")
        activity.owner = owner
    for name, entity in LINKS:
        if name in body:
            record_id = body_int(body[name], name)
            if record_id is None:
                setattr(activity, name, None)
                continue
            try:
                setattr(activity, name.removesuffix("_id"), get_record(company, entity, record_id))
            except ApiError:
                raise ApiError(400, f"{entity.capitalize()} not found") from None
    if "done" in body:
        if not isinstance(body["done"], bool):
            raise ApiError(400, "done must be a boolean")
        if body["done"] and not activity.done:
            activity.marked_as_done_time = clock.now()
        elif not body["done"]:
            activity.marked_as_done_time = None
        activity.done = body["done"]
    attributes = dict(activity.attributes)
    for name in ATTRIBUTES & set(body):
        attributes[name] = body[name]
    activity.attributes = attributes
    activity.update_time = clock.now()
    if creating:
        activity.add_time = activity.update_time


def get_activity(company: Company, activity_id: int) -> Activity:
    activity = Activity.objects.filter(company=company, id=activity_id, is_deleted=False).first()
    if activity is None:
        raise ApiError(404, "Activity not found")
    return activity


@transaction.atomic
def create_activity(caller, body) -> Activity:
    activity = Activity(company=caller.company, owner=caller.user, creator=caller.user, attributes={})
    _apply(activity, body, caller.company, creating=True)
    activity.save()
    return activity


@transaction.atomic
def update_activity(caller, activity_id: int, body) -> Activity:
    activity = get_activity(caller.company, activity_id)
    _apply(activity, body, caller.company, creating=False)
    activity.save()
    return activity


@transaction.atomic
def delete_activity(caller, activity_id: int) -> Activity:
    activity = get_activity(caller.company, activity_id)
    activity.is_deleted = True
    activity.update_time = clock.now()
    activity.save(update_fields=["is_deleted", "update_time"])
    return activity


def activities_of(company_id: int, **links) -> list[Activity]:
    """The activities linked to a deal or organization (``deal_id=`` or ``org_id=``), undone first,
    soonest due first: what the sandbox's deal and organization pages list."""
    rows = Activity.objects.filter(company_id=company_id, is_deleted=False, **links)
    return list(rows.order_by("done", F("due_date").asc(nulls_last=True), "id"))


def list_activities(company: Company, params) -> tuple[list[Activity], str | None]:
    """GET /api/v2/activities: the filters the spec lists (ids, owner, deal, person, organization,
    done, updated since/until) and cursor paging sorted by id, update_time, add_time or due_date."""
    rows = Activity.objects.filter(company=company, is_deleted=False)
    if params.get("ids"):
        try:
            ids = [int(i) for i in params["ids"].split(",")][:100]
            if any(abs(i) > spec.INT64 for i in ids):
                raise ValueError
        except ValueError:
            raise ApiError(400, "ids must be comma-separated integers") from None
        rows = rows.filter(id__in=ids)
    for name in ("owner_id", "deal_id", "person_id", "org_id"):
        if params.get(name):
            rows = rows.filter(**{name: int(params[name])})  # an integer: checked against the spec
    if params.get("done") not in (None, ""):
        rows = rows.filter(done=params["done"] in ("true", "1"))
    if params.get("updated_since"):
        rows = rows.filter(update_time__gte=parse_time(params["updated_since"]))
    if params.get("updated_until"):
        rows = rows.filter(update_time__lt=parse_time(params["updated_until"]))
    if (params.get("sort_by") or "id") != "due_date":
        return record_page(rows, params)
    # By due date (undated last), ties by id: the cursor keeps how many rows came before.
    direction = params.get("sort_direction") or "asc"
    if direction not in ("asc", "desc"):
        raise ApiError(400, "sort_direction must be asc or desc")
    order = F("due_date").desc(nulls_last=True) if direction == "desc" else F("due_date").asc(nulls_last=True)
    rows = rows.order_by(order, "-id" if direction == "desc" else "id")
    limit = page_limit(params.get("limit"))
    start = int(decode_position(params["cursor"]).get("offset", 0)) if params.get("cursor") else 0
    page = list(rows[start : start + limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (encode_position({"id": page[-1].id, "offset": start + limit}) if more else None)
