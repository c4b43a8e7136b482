"""Organizations, persons and deals (v2): validation, serialization, create/update/delete/merge, lists.

Every write goes through here so webhooks fire once.
"""

from django.db import transaction
from django.db.models import Q

from sandbox import clock
from sandbox.pipedrive import events, spec
from sandbox.pipedrive.models import (
    Company,
    CustomField,
    Deal,
    Entity,
    Note,
    Organization,
    Person,
    Stage,
    User,
)
from sandbox.pipedrive.services.common import MODELS, ApiError, entity_of, rfc3339
from sandbox.pipedrive.services.paging import parse_time, record_page

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
SPEC_PATHS = {
    Entity.ORGANIZATION: "/organizations/{id}",
    Entity.PERSON: "/persons/{id}",
    Entity.DEAL: "/deals/{id}",
}
# Pipedrive's visibility groups: owner only, owner's group, owner's group and sub-groups, company.
VISIBLE_TO = (1, 3, 5, 7)
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
        "is_deleted",
    },
}


def custom_field_codes(company_id: int, entity: str) -> list[str]:
    """The codes of the company's custom fields of ``entity``: every object lists each of them."""
    return list(
        CustomField.objects.filter(company_id=company_id, entity=entity).values_list("field_code", flat=True)
    )


def custom_fields_of(company: Company, entity: str) -> dict[str, CustomField]:
    """The company's custom fields of ``entity`` by code (a write checks its values against them)."""
    return {f.field_code: f for f in CustomField.objects.filter(company=company, entity=entity)}


def serialize(record, codes: list[str] | None = None) -> dict:
    """The v2 object, as GET /api/v2/<entity>/{id} returns it.

    ``codes``: the custom field codes of the record's company and entity, when the caller has read
    them already (a page of records, a write that checked its custom fields)."""
    entity = entity_of(record)
    if codes is None:
        codes = custom_field_codes(record.company_id, entity)
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
    if entity == Entity.PERSON:
        first, _, last = (record.name or "").partition(" ")
        data.setdefault("first_name", first or None)
        data.setdefault("last_name", last or None)
    if entity == Entity.DEAL:
        data.setdefault("creator_user_id", record.owner_id)
    return spec.complete(data, "v2", SPEC_PATHS[entity])


def body_int(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer")
    return value


def _custom_fields(fields: dict[str, CustomField], values) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ApiError(400, "custom_fields must be an object")
    known = {code: fields[code] for code in values if code in fields}
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


def _apply(
    record,
    entity: str,
    body: dict,
    company: Company,
    creating: bool,
    fields: dict[str, CustomField] | None = None,
    before: dict | None = None,
) -> dict:
    """Write ``body`` onto ``record``; returns the previous values of what changed.

    ``fields``: the company's custom fields of ``entity`` (read here when not given); ``before``: the
    record's object before the write, when the caller has it."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    unknown = set(body) - ATTRIBUTES[entity] - COLUMNS[entity]
    if unknown:
        raise ApiError(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
    if "visible_to" in body and body["visible_to"] not in VISIBLE_TO:
        raise ApiError(400, "visible_to must be 1, 3, 5 or 7")
    if fields is None:
        fields = custom_fields_of(company, entity)
    if before is None:
        before = {} if creating else serialize(record, list(fields))
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
            **_custom_fields(fields, body["custom_fields"]),
        }
    if "owner_id" in body:
        owner_id = body_int(body["owner_id"], "owner_id")
        if owner_id is not None and not User.objects.filter(company=company, id=owner_id).exists():
            raise ApiError(400, "Owner not found")
        record.owner_id = owner_id
    if "org_id" in body:
        org_id = body_int(body["org_id"], "org_id")
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
            if "first_name" not in body and "last_name" not in body:
                # Pipedrive splits a full name into first and last name.
                first, _, last = name.strip().partition(" ")
                attributes["first_name"], attributes["last_name"] = first, last.strip() or None
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
        if "is_deleted" in body:
            record.is_deleted = body["is_deleted"]
        if creating:
            attributes.setdefault("creator_user_id", record.owner_id)
            attributes.setdefault("origin", "API")
    record.attributes = attributes
    if "value" in attributes and (
        isinstance(attributes["value"], bool) or not isinstance(attributes["value"], int | float)
    ):
        raise ApiError(400, "value must be a number")
    record.update_time = clock.now()
    if creating:
        record.add_time = record.update_time
        return {}
    after = serialize(record, list(fields))
    return {k: v for k, v in before.items() if after.get(k) != v and k != "update_time"}


def _apply_deal(deal: Deal, body: dict, company: Company, creating: bool) -> None:
    if "title" in body:
        if not isinstance(body["title"], str) or not body["title"].strip():
            raise ApiError(400, "title must be a non-empty string")
        deal.title = body["title"]
    if creating and not deal.title:
        raise ApiError(400, "title is required")
    if "person_id" in body:
        person_id = body_int(body["person_id"], "person_id")
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
            now = rfc3339(clock.now())
            deal.attributes[{"won": "won_time", "lost": "lost_time"}.get(body["status"], "reopen_time")] = now
            deal.attributes.pop("reopen_time", None)
            # A won or lost deal is closed; reopening it clears the close time.
            deal.attributes["close_time"] = now if body["status"] in ("won", "lost") else None
        deal.status = body["status"]
    stages = Stage.objects.filter(pipeline__company=company)
    previous_stage = None if creating else deal.stage_id
    if "stage_id" in body:
        stage = stages.filter(id=body_int(body["stage_id"], "stage_id")).first()
        if stage is None:
            raise ApiError(400, "Stage not found")
        deal.stage = stage
    elif "pipeline_id" in body:
        stage = stages.filter(pipeline_id=body_int(body["pipeline_id"], "pipeline_id")).first()
        if stage is None:
            raise ApiError(400, "Pipeline not found")
        if creating or deal.stage.pipeline_id != stage.pipeline_id:
            deal.stage = stage
    elif creating:
        deal.stage = stages.order_by("pipeline__order_nr", "pipeline_id", "order_nr").first()
        if deal.stage is None:
            raise ApiError(400, "The company has no pipeline")
    if previous_stage is not None and deal.stage_id != previous_stage:
        deal.attributes["stage_change_time"] = rfc3339(clock.now())


def get_record(company: Company, entity: str, record_id: int, include_deleted: bool = False):
    rows = MODELS[entity].objects.filter(company=company, id=record_id)
    if entity == Entity.DEAL:
        rows = rows.select_related("stage")  # its object shows the stage's pipeline
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
    fields = custom_fields_of(caller.company, entity)
    _apply(record, entity, body, caller.company, creating=True, fields=fields)
    record.save()
    events.record_changed(caller, entity, "create", record, codes=list(fields))
    return record


@transaction.atomic
def update_record(caller, entity: str, record_id: int, body: dict):
    record = get_record(caller.company, entity, record_id)
    fields = custom_fields_of(caller.company, entity)
    before = serialize(record, list(fields))
    previous = _apply(record, entity, body, caller.company, creating=False, fields=fields, before=before)
    record.save()
    if previous:
        events.record_changed(
            caller, entity, "change", record, previous=previous, previous_full=before, codes=list(fields)
        )
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
            ids = [int(i) for i in params["ids"].split(",")][:100]
            if any(abs(i) > spec.INT64 for i in ids):
                raise ValueError
            rows = rows.filter(id__in=ids)
        except ValueError:
            raise ApiError(400, "ids must be comma-separated integers") from None
    for name in ("owner_id", "org_id", "person_id", "stage_id"):
        if params.get(name) and hasattr(MODELS[entity], name.removesuffix("_id")):
            rows = rows.filter(**{name: params[name]})
    if params.get("pipeline_id") and entity == Entity.DEAL:
        rows = rows.filter(stage__pipeline_id=params["pipeline_id"])
    if params.get("updated_since"):
        rows = rows.filter(update_time__gte=parse_time(params["updated_since"]))
    if params.get("updated_until"):
        rows = rows.filter(update_time__lt=parse_time(params["updated_until"]))
    return record_page(rows, params)
