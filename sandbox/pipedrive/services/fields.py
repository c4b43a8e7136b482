"""The *Fields endpoints (v2): standard fields listed next to the company's custom ones."""

import copy
import secrets

from django.db import transaction

from sandbox import clock
from sandbox.pipedrive.models import Company, CustomField, Entity
from sandbox.pipedrive.services.common import ApiError

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
# Deal fields carry a description in the spec (person and organization fields do not): the standard
# ones as the spec's examples word them, custom ones as sent when added (null when none).
STANDARD_DESCRIPTIONS = {
    "title": "The title or name of the deal",
    "value": "The monetary value of the deal",
    "owner_id": "The user who owns the record",
    "person_id": "The person linked to the deal",
    "org_id": "The organization linked to the record",
    "stage_id": "The pipeline stage of the deal",
    "status": "Whether the deal is open, won or lost",
    "expected_close_date": "The date the deal is expected to close",
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


# What GET /api/v2/*Fields adds on ``include_fields`` (in the spec's shapes), for fields added without.
_NOT_REQUIRED = {"enabled": False, "stage_ids": []}
_SHOW = {"show": False, "order": 0}
NAMESPACE_DEFAULTS = {
    Entity.DEAL: {
        "ui_visibility": {
            "add_visible_flag": True,
            "details_visible_flag": True,
            "projects_detail_visible_flag": True,
            "show_in_pipelines": {"show_in_all": True, "pipeline_ids": []},
        },
        "important_fields": _NOT_REQUIRED,
        "required_fields": {**_NOT_REQUIRED, "statuses": {}},
    },
    Entity.PERSON: {
        "ui_visibility": {
            "add_visible_flag": True,
            "details_visible_flag": True,
            "show_in_add_deal_dialog": _SHOW,
        },
        "important_fields": _NOT_REQUIRED,
        "required_fields": {"enabled": False},
    },
    Entity.ORGANIZATION: {
        "ui_visibility": {
            "add_visible_flag": True,
            "details_visible_flag": True,
            "org_detail_visible_flag": True,
            "person_detail_visible_flag": True,
            "deal_detail_visible_flag": True,
            "show_in_add_deal_dialog": _SHOW,
            "show_in_add_person_dialog": _SHOW,
        },
        "important_fields": _NOT_REQUIRED,
        "required_fields": {"enabled": False},
    },
}


def namespaces_asked(include_fields: str | None) -> tuple[str, ...]:
    """The namespaces an ``include_fields`` query names (the spec's enum is checked before)."""
    return tuple(n for n in (include_fields or "").split(",") if n in NAMESPACE_DEFAULTS[Entity.DEAL])


def _merged(default, sent):
    """``sent`` over ``default``, key by key where the default is an object with known keys."""
    if not (isinstance(default, dict) and default and isinstance(sent, dict)):
        return copy.deepcopy(sent if sent is not None else default)
    return {key: _merged(value, sent.get(key)) for key, value in default.items()}


def serialize_field(field, entity: str | None = None, include: tuple[str, ...] = ()) -> dict:
    """A custom field, or a standard one (a (code, name, type) of ``entity`` in STANDARD_FIELDS),
    with the ``include`` namespaces."""
    stored: dict = {}
    if isinstance(field, CustomField):
        entity, description, stored = field.entity, field.description or None, field.namespaces
        data = {
            "field_name": field.field_name,
            "field_code": field.field_code,
            "field_type": field.field_type,
            "options": field.options,
            "is_custom_field": True,
        }
    else:
        code, name, kind = field
        description = STANDARD_DESCRIPTIONS.get(code)
        data = {
            "field_name": name,
            "field_code": code,
            "field_type": kind,
            "options": None,
            "is_custom_field": False,
        }
    if entity == Entity.DEAL:
        data["description"] = description
    data |= {"subfields": None, "is_optional_response_field": False}
    defaults = NAMESPACE_DEFAULTS[Entity(entity)]
    return data | {name: _merged(defaults[name], stored.get(name)) for name in include}


def list_fields(company: Company, entity: str, include: tuple[str, ...] = ()) -> list[dict]:
    custom = CustomField.objects.filter(company=company, entity=entity).order_by("id")
    return [serialize_field(f, entity, include) for f in STANDARD_FIELDS[entity]] + [
        serialize_field(f, include=include) for f in custom
    ]


def get_field(company: Company, entity: str, code: str, include: tuple[str, ...] = ()) -> dict:
    for field in list_fields(company, entity, include):
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
    if len(body["field_name"].strip()) > CustomField._meta.get_field("field_name").max_length:
        raise ApiError(400, "field_name must be 200 characters or less")
    if body.get("field_type") not in FIELD_TYPES_CREATABLE:
        raise ApiError(400, f"field_type must be one of {', '.join(sorted(FIELD_TYPES_CREATABLE))}")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise ApiError(400, "description must be a string")
    namespaces = {}
    for name, default in NAMESPACE_DEFAULTS[Entity(entity)].items():
        if body.get(name) is not None:
            if not isinstance(body[name], dict):
                raise ApiError(400, f"{name} must be an object")
            namespaces[name] = _merged(default, body[name])
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
        description=description or "",
        options=options,
        namespaces=namespaces,
        add_time=clock.now(),
    )
