"""Search (v2): /persons/search, /organizations/search and /itemSearch/field."""

from sandbox.pipedrive.models import Company, CustomField, Entity
from sandbox.pipedrive.services.common import MODELS, ApiError, _drop_none
from sandbox.pipedrive.services.paging import cursor_page

SEARCHABLE_FIELD_TYPES = {"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"}


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
