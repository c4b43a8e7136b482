"""Business logic of the emulated Pipedrive: records, custom fields, paging, search, merges.

Views parse requests and call these; every write goes through here so webhooks fire once.
"""

import base64
import json
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from sandbox import clock
from sandbox.pipedrive import events
from sandbox.pipedrive.models import (
    Company,
    CustomField,
    Deal,
    Entity,
    Note,
    OAuthApp,
    Organization,
    Person,
    Pipeline,
    Plan,
    Stage,
    User,
)

MAX_PAGE = 500
DEFAULT_PAGE = 100
SEARCHABLE_FIELD_TYPES = {"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"}

DEMO_DOMAIN = "sandbox-demo"
# 40 chars like a real token; printed by the seed command.
DEMO_API_TOKEN = "sandbox0pipedrive0dev0token0000000000000"  # noqa: S105 (published dev token)
DEMO_CLIENT_ID = "sandbox-pipedrive-client"
DEMO_CLIENT_SECRET = "sandbox-pipedrive-secret"  # noqa: S105 (a sandbox's published demo credential)


class ApiError(Exception):
    """A request Pipedrive would refuse: becomes the error envelope with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def rfc3339(moment) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# --- entity descriptions ------------------------------------------------------------------------

MODELS = {Entity.ORGANIZATION: Organization, Entity.PERSON: Person, Entity.DEAL: Deal}

# Body fields each v2 POST/PATCH accepts besides the ones with columns (openapi-v2.yaml request bodies).
ATTRIBUTES = {
    Entity.ORGANIZATION: {
        "visible_to",
        "label_ids",
        "address",
        "website",
        "linkedin",
        "industry",
        "annual_revenue",
        "employee_count",
    },
    Entity.PERSON: {
        "first_name",
        "last_name",
        "emails",
        "phones",
        "visible_to",
        "label_ids",
        "marketing_status",
        "postal_address",
        "notes",
        "im",
        "birthday",
        "job_title",
    },
    Entity.DEAL: {
        "value",
        "currency",
        "probability",
        "lost_reason",
        "visible_to",
        "close_time",
        "won_time",
        "lost_time",
        "expected_close_date",
        "label_ids",
        "is_archived",
        "archive_time",
        "origin",
        "origin_id",
        "channel",
        "channel_id",
    },
}
COLUMNS = {
    Entity.ORGANIZATION: {"name", "owner_id", "add_time", "custom_fields"},
    Entity.PERSON: {"name", "owner_id", "org_id", "add_time", "custom_fields"},
    Entity.DEAL: {
        "title",
        "owner_id",
        "person_id",
        "org_id",
        "pipeline_id",
        "stage_id",
        "status",
        "add_time",
        "custom_fields",
    },
}
# Standard fields listed by the *Fields endpoints next to the custom ones: (code, name, type).
STANDARD_FIELDS = {
    Entity.ORGANIZATION: [
        ("name", "Name", "varchar"),
        ("owner_id", "Owner", "user"),
        ("address", "Address", "address"),
        ("website", "Website", "varchar"),
        ("visible_to", "Visible to", "visible_to"),
    ],
    Entity.PERSON: [
        ("name", "Name", "varchar"),
        ("owner_id", "Owner", "user"),
        ("org_id", "Organization", "org"),
        ("emails", "Email", "varchar"),
        ("phones", "Phone", "phone"),
        ("visible_to", "Visible to", "visible_to"),
    ],
    Entity.DEAL: [
        ("title", "Title", "varchar"),
        ("value", "Value", "monetary"),
        ("owner_id", "Owner", "user"),
        ("person_id", "Contact person", "people"),
        ("org_id", "Organization", "org"),
        ("stage_id", "Stage", "stage"),
        ("status", "Status", "status"),
        ("expected_close_date", "Expected close date", "date"),
    ],
}
FIELD_TYPES_CREATABLE = {
    "varchar",
    "text",
    "double",
    "phone",
    "date",
    "daterange",
    "time",
    "timerange",
    "set",
    "enum",
    "varchar_auto",
    "address",
    "monetary",
    "org",
    "people",
    "user",
}


def _drop_none(data: dict) -> dict:
    # The spec marks most fields non-nullable: absent beats null.
    return {k: v for k, v in data.items() if v is not None or k == "custom_fields"}


def serialize(record) -> dict:
    """The v2 object, as GET /api/v2/<entity>/{id} returns it."""
    entity = entity_of(record)
    codes = CustomField.objects.filter(company_id=record.company_id, entity=entity).values_list(
        "field_code", flat=True
    )
    data = {
        "id": record.id,
        "owner_id": record.owner_id,
        "add_time": rfc3339(record.add_time),
        "update_time": rfc3339(record.update_time),
        "is_deleted": record.is_deleted,
        "visible_to": 3,
        "label_ids": [],
        **record.attributes,
        "custom_fields": {code: record.custom_fields.get(code) for code in codes},
    }
    if entity == Entity.DEAL:
        data.update(
            title=record.title,
            person_id=record.person_id,
            org_id=record.org_id,
            pipeline_id=record.stage.pipeline_id,
            stage_id=record.stage_id,
            status=record.status,
            currency=record.attributes.get("currency", "USD"),
            value=record.attributes.get("value", 0),
            is_archived=record.attributes.get("is_archived", False),
        )
    else:
        data["name"] = record.name
        if entity == Entity.PERSON:
            data.setdefault("emails", [])
            data.setdefault("phones", [])
            data["org_id"] = record.org_id
    return _drop_none(data)


def entity_of(record) -> str:
    return {Organization: Entity.ORGANIZATION, Person: Entity.PERSON, Deal: Entity.DEAL}[type(record)]


# --- paging -------------------------------------------------------------------------------------


def _encode(position: dict) -> str:
    # Opaque to clients, like Pipedrive's: base64 of where the last page ended.
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        int(position["id"])
        return position
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "Invalid cursor") from None


def encode_cursor(last_id: int) -> str:
    return _encode({"id": last_id})


def decode_cursor(cursor: str) -> int:
    return int(_decode(cursor)["id"])


def page_limit(raw: str | None, maximum: int = MAX_PAGE) -> int:
    if raw in (None, ""):
        return DEFAULT_PAGE
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "limit must be an integer") from None
    if limit < 1:
        raise ApiError(400, "limit must be at least 1")
    return min(limit, maximum)


def cursor_page(rows, params, descending: bool = False) -> tuple[list, str | None]:
    """One page of ``rows`` (a queryset or id-sorted list) after ``params['cursor']``."""
    limit = page_limit(params.get("limit"))
    after = decode_cursor(params["cursor"]) if params.get("cursor") else None
    if isinstance(rows, list):
        rows = sorted(rows, key=lambda r: r.id, reverse=descending)
        if after is not None:
            rows = [r for r in rows if (r.id < after if descending else r.id > after)]
        page = rows[: limit + 1]
    else:
        rows = rows.order_by("-id" if descending else "id")
        if after is not None:
            rows = rows.filter(id__lt=after) if descending else rows.filter(id__gt=after)
        page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (encode_cursor(page[-1].id) if more else None)


# --- records ------------------------------------------------------------------------------------


def _int(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer")
    return value


def _custom_fields(company: Company, entity: str, values) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ApiError(400, "custom_fields must be an object")
    known = {
        f.field_code: f
        for f in CustomField.objects.filter(company=company, entity=entity, field_code__in=values)
    }
    unknown = set(values) - set(known)
    if unknown:
        raise ApiError(400, f"Unknown custom field(s): {', '.join(sorted(unknown))}")
    for code, value in values.items():
        kind = known[code].field_type
        if value is None:
            continue
        if kind in ("varchar", "text", "varchar_auto", "phone", "date") and not isinstance(value, str):
            raise ApiError(400, f"custom field {code} ({kind}) expects a string")
        if kind == "double" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(400, f"custom field {code} (double) expects a number")
    return values


def _contact_list(values, name: str) -> list:
    if not isinstance(values, list) or not all(isinstance(v, dict) and "value" in v for v in values):
        raise ApiError(400, f"{name} must be an array of objects with a value")
    result = [
        {"value": v["value"], "primary": bool(v.get("primary")), "label": v.get("label") or "work"}
        for v in values
    ]
    if result and not any(v["primary"] for v in result):
        result[0]["primary"] = True
    return result


def _apply(record, entity: str, body: dict, company: Company, creating: bool) -> dict:
    """Write ``body`` onto ``record``; returns the previous values of what changed."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    unknown = set(body) - ATTRIBUTES[entity] - COLUMNS[entity]
    if unknown:
        raise ApiError(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
    before = {} if creating else serialize(record)
    attributes = dict(record.attributes)
    for key in ATTRIBUTES[entity] & set(body):
        value = body[key]
        if key in ("emails", "phones", "im"):
            value = _contact_list(value, key)
        attributes[key] = value
    record.attributes = attributes
    if "custom_fields" in body:
        record.custom_fields = {
            **record.custom_fields,
            **_custom_fields(company, entity, body["custom_fields"]),
        }
    if "owner_id" in body:
        owner_id = _int(body["owner_id"], "owner_id")
        if owner_id is not None and not User.objects.filter(company=company, id=owner_id).exists():
            raise ApiError(400, "Owner not found")
        record.owner_id = owner_id
    if "org_id" in body:
        org_id = _int(body["org_id"], "org_id")
        if (
            org_id is not None
            and not Organization.objects.filter(company=company, id=org_id, is_deleted=False).exists()
        ):
            raise ApiError(400, "Organization not found")
        record.org_id = org_id
    if entity == Entity.PERSON:
        name = body.get("name")
        if name is None and ("first_name" in body or "last_name" in body):
            name = " ".join(filter(None, [body.get("first_name"), body.get("last_name")])) or None
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, "name must be a non-empty string")
            record.name = name
        if creating and not record.name:
            raise ApiError(400, "name or first_name and last_name are required")
    elif entity == Entity.ORGANIZATION:
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip():
                raise ApiError(400, "name must be a non-empty string")
            record.name = body["name"]
        if creating and not record.name:
            raise ApiError(400, "name is required")
    else:
        _apply_deal(record, body, company, creating)
    if "value" in attributes and (
        isinstance(attributes["value"], bool) or not isinstance(attributes["value"], int | float)
    ):
        raise ApiError(400, "value must be a number")
    record.update_time = clock.now()
    if creating:
        record.add_time = record.update_time
        return {}
    after = serialize(record)
    return {k: v for k, v in before.items() if after.get(k) != v and k != "update_time"}


def _apply_deal(deal: Deal, body: dict, company: Company, creating: bool) -> None:
    if "title" in body:
        if not isinstance(body["title"], str) or not body["title"].strip():
            raise ApiError(400, "title must be a non-empty string")
        deal.title = body["title"]
    if creating and not deal.title:
        raise ApiError(400, "title is required")
    if "person_id" in body:
        person_id = _int(body["person_id"], "person_id")
        if (
            person_id is not None
            and not Person.objects.filter(company=company, id=person_id, is_deleted=False).exists()
        ):
            raise ApiError(400, "Person not found")
        deal.person_id = person_id
    if "status" in body:
        if body["status"] not in ("open", "won", "lost"):
            raise ApiError(400, "status must be open, won or lost")
        if body["status"] != deal.status:
            deal.attributes[{"won": "won_time", "lost": "lost_time"}.get(body["status"], "reopen_time")] = (
                rfc3339(clock.now())
            )
            deal.attributes.pop("reopen_time", None)
        deal.status = body["status"]
    stages = Stage.objects.filter(pipeline__company=company)
    if "stage_id" in body:
        stage = stages.filter(id=_int(body["stage_id"], "stage_id")).first()
        if stage is None:
            raise ApiError(400, "Stage not found")
        deal.stage = stage
    elif "pipeline_id" in body:
        stage = stages.filter(pipeline_id=_int(body["pipeline_id"], "pipeline_id")).first()
        if stage is None:
            raise ApiError(400, "Pipeline not found")
        if creating or deal.stage.pipeline_id != stage.pipeline_id:
            deal.stage = stage
    elif creating:
        deal.stage = stages.order_by("pipeline__order_nr", "pipeline_id", "order_nr").first()
        if deal.stage is None:
            raise ApiError(400, "The company has no pipeline")


def get_record(company: Company, entity: str, record_id: int, include_deleted: bool = False):
    rows = MODELS[entity].objects.filter(company=company, id=record_id)
    if not include_deleted:
        rows = rows.filter(is_deleted=False)
    record = rows.first()
    if record is None:
        raise ApiError(404, f"{entity.capitalize()} not found")
    return record


@transaction.atomic
def create_record(caller, entity: str, body: dict):
    record = MODELS[entity](company=caller.company, owner=caller.user, attributes={}, custom_fields={})
    if entity == Entity.DEAL:
        record.status = "open"
    _apply(record, entity, body, caller.company, creating=True)
    record.save()
    events.record_changed(caller, entity, "create", record)
    return record


@transaction.atomic
def update_record(caller, entity: str, record_id: int, body: dict):
    record = get_record(caller.company, entity, record_id)
    before = serialize(record)
    previous = _apply(record, entity, body, caller.company, creating=False)
    record.save()
    if previous:
        events.record_changed(caller, entity, "change", record, previous=previous, previous_full=before)
    return record


@transaction.atomic
def delete_record(caller, entity: str, record_id: int, merged_to: int | None = None):
    record = get_record(caller.company, entity, record_id)
    last_state = serialize(record)
    record.is_deleted = True
    record.update_time = clock.now()
    record.save()
    events.record_changed(caller, entity, "delete", record, previous=last_state, merged_to_id=merged_to)
    return record


@transaction.atomic
def merge_records(caller, entity: str, merged_id: int, survivor_id: int):
    """v1 PUT /<entity>/{id}/merge: ``merged_id`` goes into ``survivor_id`` (kept, its data wins)."""
    if merged_id == survivor_id:
        raise ApiError(400, "Cannot merge a record with itself")
    survivor = get_record(caller.company, entity, survivor_id)
    merged = get_record(caller.company, entity, merged_id)
    before = serialize(survivor)
    # Move what hangs off the merged record, then fill the survivor's blanks from it.
    link = {Entity.ORGANIZATION: "org", Entity.PERSON: "person", Entity.DEAL: "deal"}[entity]
    for model in (Person, Deal, Note):
        if model is not MODELS.get(entity) and link in {f.name for f in model._meta.fields}:
            model.objects.filter(**{f"{link}_id": merged.id}).update(**{f"{link}_id": survivor.id})
    survivor.attributes = {
        **merged.attributes,
        **{k: v for k, v in survivor.attributes.items() if v not in (None, [])},
    }
    survivor.custom_fields = {
        **merged.custom_fields,
        **{k: v for k, v in survivor.custom_fields.items() if v is not None},
    }
    survivor.update_time = clock.now()
    survivor.save()
    delete_record(caller, entity, merged.id, merged_to=survivor.id)
    after = serialize(survivor)
    previous = {k: v for k, v in before.items() if after.get(k) != v and k != "update_time"}
    events.record_changed(
        caller, entity, "change", survivor, previous=previous, previous_full=before, merged_from_id=merged.id
    )
    return survivor


def list_records(company: Company, entity: str, params) -> tuple[list, str | None]:
    rows = MODELS[entity].objects.filter(company=company)
    if entity == Entity.DEAL:
        statuses = set((params.get("status") or "open,won,lost").split(","))
        wanted = Q(is_deleted=False, status__in=statuses - {"deleted"})
        if "deleted" in statuses:
            wanted |= Q(is_deleted=True)
        # Archived deals live only under /deals/archived since 2025-07-15.
        not_archived = Q(attributes__is_archived__isnull=True) | Q(attributes__is_archived=False)
        rows = rows.filter(wanted).filter(not_archived).select_related("stage")
    else:
        rows = rows.filter(is_deleted=False)
    if params.get("ids"):
        try:
            rows = rows.filter(id__in=[int(i) for i in params["ids"].split(",")][:100])
        except ValueError:
            raise ApiError(400, "ids must be comma-separated integers") from None
    for name in ("owner_id", "org_id", "person_id", "stage_id"):
        if params.get(name) and hasattr(MODELS[entity], name.removesuffix("_id")):
            rows = rows.filter(**{name: params[name]})
    if params.get("pipeline_id") and entity == Entity.DEAL:
        rows = rows.filter(stage__pipeline_id=params["pipeline_id"])
    if params.get("updated_since"):
        rows = rows.filter(update_time__gte=_parse_time(params["updated_since"]))
    if params.get("updated_until"):
        rows = rows.filter(update_time__lt=_parse_time(params["updated_until"]))
    return record_page(rows, params)


def record_page(rows, params) -> tuple[list, str | None]:
    """A page of a v2 list sorted by ``sort_by`` (id, update_time, add_time) and ``sort_direction``."""
    sort_by = params.get("sort_by") or "id"
    direction = params.get("sort_direction") or "asc"
    if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
        raise ApiError(400, "sort_by must be id, update_time or add_time; sort_direction asc or desc")
    if sort_by == "id":
        return cursor_page(rows, params, descending=direction == "desc")
    limit = page_limit(params.get("limit"))
    sign, beyond = ("-", "lt") if direction == "desc" else ("", "gt")
    rows = rows.order_by(f"{sign}{sort_by}", f"{sign}id")
    if params.get("cursor"):
        after = _decode(params["cursor"])
        value = _parse_time(after.get("value") or "")
        # Ties on the timestamp are broken by id, so no record is skipped or repeated.
        rows = rows.filter(
            Q(**{f"{sort_by}__{beyond}": value}) | Q(**{sort_by: value, f"id__{beyond}": int(after["id"])})
        )
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    last = page[-1] if page else None
    next_cursor = _encode({"id": last.id, "value": getattr(last, sort_by).isoformat()}) if more else None
    return page, next_cursor


def _parse_time(raw: str):
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(raw.replace(" ", "+"))
    if moment is None:
        raise ApiError(400, "Invalid RFC 3339 timestamp")
    return moment


# --- custom fields ------------------------------------------------------------------------------


def serialize_field(field) -> dict:
    if isinstance(field, CustomField):
        return {
            "field_name": field.field_name,
            "field_code": field.field_code,
            "field_type": field.field_type,
            "options": field.options,
            "subfields": None,
            "is_custom_field": True,
            "is_optional_response_field": False,
        }
    code, name, kind = field
    return {
        "field_name": name,
        "field_code": code,
        "field_type": kind,
        "options": None,
        "subfields": None,
        "is_custom_field": False,
        "is_optional_response_field": False,
    }


def list_fields(company: Company, entity: str) -> list[dict]:
    custom = CustomField.objects.filter(company=company, entity=entity).order_by("id")
    return [serialize_field(f) for f in STANDARD_FIELDS[entity]] + [serialize_field(f) for f in custom]


def get_field(company: Company, entity: str, code: str) -> dict:
    for field in list_fields(company, entity):
        if field["field_code"] == code:
            return field
    raise ApiError(404, "Field not found")


@transaction.atomic
def create_field(company: Company, entity: str, body: dict) -> CustomField:
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("field_name"), str)
        or not body["field_name"].strip()
    ):
        raise ApiError(400, "field_name is required")
    if body.get("field_type") not in FIELD_TYPES_CREATABLE:
        raise ApiError(400, f"field_type must be one of {', '.join(sorted(FIELD_TYPES_CREATABLE))}")
    options = None
    if body["field_type"] in ("enum", "set"):
        labels = [o.get("label") for o in body.get("options") or [] if isinstance(o, dict)]
        if not labels or not all(isinstance(label, str) for label in labels):
            raise ApiError(400, "enum and set fields need options with labels")
        options = [{"id": i, "label": label} for i, label in enumerate(labels, start=1)]
    return CustomField.objects.create(
        company=company,
        entity=entity,
        field_code=secrets.token_hex(20),  # Pipedrive's 40-character hash keys
        field_name=body["field_name"].strip(),
        field_type=body["field_type"],
        options=options,
        add_time=clock.now(),
    )


# --- search -------------------------------------------------------------------------------------


def _matches(value: str, term: str, exact: bool, case_sensitive: bool = False, mode: str = "middle") -> bool:
    if not case_sensitive:
        value, term = value.lower(), term.lower()
    if exact or mode == "exact":
        return value == term
    if mode == "beginning":
        return value.startswith(term)
    return term in value


def _searchable_custom(company: Company, entity: str) -> list[str]:
    return list(
        CustomField.objects.filter(
            company=company, entity=entity, field_type__in=SEARCHABLE_FIELD_TYPES
        ).values_list("field_code", flat=True)
    )


def search_records(company: Company, entity: str, params) -> tuple[list[dict], str | None]:
    """GET /api/v2/{persons,organizations}/search."""
    term = (params.get("term") or "").strip()
    exact = params.get("exact_match") == "true"
    if len(term) < (1 if exact else 2):
        raise ApiError(400, "term must be at least 2 characters long (1 with exact_match)")
    allowed = {"person": {"custom_fields", "email", "notes", "phone", "name"}}.get(
        entity, {"address", "custom_fields", "notes", "name"}
    )
    fields = set((params.get("fields") or ",".join(allowed)).split(","))
    if not fields <= allowed:
        raise ApiError(400, f"fields must be among {', '.join(sorted(allowed))}")
    rows = MODELS[entity].objects.filter(company=company, is_deleted=False).select_related("owner")
    if entity == Entity.PERSON and params.get("organization_id"):
        rows = rows.filter(org_id=params["organization_id"])
    custom_codes = _searchable_custom(company, entity) if "custom_fields" in fields else []
    found = []
    for record in rows.order_by("id"):
        candidates = []
        if "name" in fields:
            candidates.append(record.name)
        if "email" in fields:
            candidates += [e["value"] for e in record.attributes.get("emails", [])]
        if "phone" in fields:
            candidates += [p["value"] for p in record.attributes.get("phones", [])]
        if "address" in fields and isinstance(record.attributes.get("address"), dict):
            candidates.append(record.attributes["address"].get("value") or "")
        if "notes" in fields and record.attributes.get("notes"):
            candidates.append(record.attributes["notes"])
        custom_values = [
            str(record.custom_fields[c]) for c in custom_codes if record.custom_fields.get(c) is not None
        ]
        candidates += custom_values
        if any(_matches(str(c), term, exact) for c in candidates):
            found.append(record)
    page, next_cursor = cursor_page(found, params)
    items = []
    for record in page:
        item = {
            "id": record.id,
            "type": entity,
            "name": record.name,
            "visible_to": record.attributes.get("visible_to", 3),
            "owner": {"id": record.owner_id} if record.owner_id else None,
            "custom_fields": [
                str(record.custom_fields[c]) for c in custom_codes if record.custom_fields.get(c) is not None
            ],
            "notes": [],
        }
        if entity == Entity.PERSON:
            item["emails"] = [e["value"] for e in record.attributes.get("emails", [])]
            item["phones"] = [p["value"] for p in record.attributes.get("phones", [])]
            if record.org_id:
                item["organization"] = {"id": record.org_id, "name": record.org.name}
        else:
            address = record.attributes.get("address")
            item["address"] = address.get("value") if isinstance(address, dict) else None
        items.append({"result_score": 1.0 if exact else 0.5, "item": _drop_none(item)})
    return items, next_cursor


def search_field(company: Company, params) -> tuple[list[dict], str | None]:
    """GET /api/v2/itemSearch/field: records whose one field matches (exact is case-sensitive)."""
    entity = params.get("entity_type")
    if entity not in MODELS:
        raise ApiError(400, "entity_type must be deal, person or organization in the sandbox")
    field, term = params.get("field"), params.get("term") or ""
    match = params.get("match") or "exact"
    if not field or not term or match not in ("exact", "beginning", "middle"):
        raise ApiError(400, "term, field and a valid match are required")
    label = "title" if entity == Entity.DEAL else "name"
    is_custom = CustomField.objects.filter(company=company, entity=entity, field_code=field).exists()
    if not is_custom and field not in {label, "emails", "phones"}:
        raise ApiError(400, f"Field {field} cannot be searched")
    found = []
    for record in MODELS[entity].objects.filter(company=company, is_deleted=False).order_by("id"):
        if is_custom:
            values = [record.custom_fields.get(field)]
        elif field in ("emails", "phones"):
            values = [v["value"] for v in record.attributes.get(field, [])]
        else:
            values = [getattr(record, label)]
        if any(
            v is not None and _matches(str(v), term, False, case_sensitive=match == "exact", mode=match)
            for v in values
        ):
            found.append(record)
    page, next_cursor = cursor_page(found, params)
    # The spec's example: a flat list of {id, name}.
    return [{"id": r.id, "name": getattr(r, label)} for r in page], next_cursor


# --- pipelines, stages, notes -------------------------------------------------------------------


def serialize_pipeline(pipeline: Pipeline) -> dict:
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "order_nr": pipeline.order_nr,
        "is_deleted": False,
        "is_deal_probability_enabled": pipeline.is_deal_probability_enabled,
        "add_time": rfc3339(pipeline.add_time),
        "update_time": rfc3339(pipeline.update_time),
    }


def serialize_stage(stage: Stage) -> dict:
    return {
        "id": stage.id,
        "order_nr": stage.order_nr,
        "name": stage.name,
        "is_deleted": False,
        "deal_probability": stage.deal_probability,
        "pipeline_id": stage.pipeline_id,
        "is_deal_rot_enabled": False,
        "days_to_rotten": None,
        "add_time": rfc3339(stage.add_time),
        "update_time": rfc3339(stage.update_time),
    }


def serialize_note(note: Note) -> dict:
    data = {
        "id": note.id,
        "active_flag": True,
        "add_time": note.add_time.strftime("%Y-%m-%d %H:%M:%S"),
        "update_time": note.update_time.strftime("%Y-%m-%d %H:%M:%S"),
        "content": note.content,
        "deal_id": note.deal_id,
        "person_id": note.person_id,
        "org_id": note.org_id,
        "user_id": note.user_id,
        "last_update_user_id": note.user_id,
        "pinned_to_deal_flag": False,
        "pinned_to_organization_flag": False,
        "pinned_to_person_flag": False,
        "deal": {"title": note.deal.title} if note.deal_id else None,
        "organization": {"name": note.org.name} if note.org_id else None,
        "person": {"name": note.person.name} if note.person_id else None,
        "user": {"email": note.user.email, "name": note.user.name, "icon_url": "", "is_you": True}
        if note.user_id
        else None,
    }
    return {k: v for k, v in data.items() if v is not None}


def create_note(caller, body: dict) -> Note:
    if not isinstance(body, dict) or not isinstance(body.get("content"), str) or not body["content"].strip():
        raise ApiError(400, "content is required")
    targets = {}
    for key, entity in (
        ("deal_id", Entity.DEAL),
        ("person_id", Entity.PERSON),
        ("org_id", Entity.ORGANIZATION),
    ):
        if body.get(key) is not None:
            targets[key.removesuffix("_id")] = get_record(caller.company, entity, _int(body[key], key))
    if not targets:
        raise ApiError(400, "One of deal_id, person_id, org_id or lead_id is required")
    now = clock.now()
    return Note.objects.create(
        company=caller.company,
        user=caller.user,
        content=body["content"],
        add_time=now,
        update_time=now,
        **targets,
    )


def list_notes(company: Company, params) -> tuple[list[Note], dict]:
    """v1 offset paging: start + limit -> additional_data.pagination."""
    rows = Note.objects.filter(company=company).select_related("deal", "person", "org", "user").order_by("id")
    for key in ("deal_id", "person_id", "org_id", "user_id"):
        if params.get(key):
            rows = rows.filter(**{key: params[key]})
    try:
        start = int(params.get("start") or 0)
    except ValueError:
        raise ApiError(400, "start must be an integer") from None
    limit = page_limit(params.get("limit"))
    page = list(rows[start : start + limit + 1])
    more = len(page) > limit
    pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return page[:limit], pagination


# --- the demo company ---------------------------------------------------------------------------


@transaction.atomic
def ensure_demo_company() -> Company:
    """The demo company with its admin user (known API token), a pipeline with stages and an OAuth app."""
    company, _ = Company.objects.get_or_create(
        domain=DEMO_DOMAIN, defaults={"name": "Sandbox Demo Ltd", "plan": Plan.GROWTH, "seats": 3}
    )
    User.objects.get_or_create(
        api_token=DEMO_API_TOKEN,
        defaults={
            "company": company,
            "name": "Demo Admin",
            "email": "admin@sandbox-demo.example",
            "is_admin": True,
        },
    )
    if not company.pipelines.exists():
        now = clock.now()
        pipeline = Pipeline.objects.create(
            company=company, name="Sales", order_nr=1, add_time=now, update_time=now
        )
        for order, (name, probability) in enumerate(
            [("Invoice drafted", 20), ("Invoice sent", 60), ("Partly paid", 80), ("Paid", 100)], start=1
        ):
            Stage.objects.create(
                pipeline=pipeline,
                name=name,
                order_nr=order,
                deal_probability=probability,
                add_time=now,
                update_time=now,
            )
    OAuthApp.objects.get_or_create(
        client_id=DEMO_CLIENT_ID,
        defaults={
            "name": "ml-connector (sandbox)",
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": f"{settings.PUBLIC_BASE_URL}/connect/pipedrive/callback/",
        },
    )
    return company
