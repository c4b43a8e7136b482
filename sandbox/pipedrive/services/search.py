"""Search (v2): /persons/search, /organizations/search and /itemSearch/field."""

from sandbox.pipedrive.models import Company, CustomField, Entity
from sandbox.pipedrive.services.common import MODELS, ApiError, drop_none
from sandbox.pipedrive.services.paging import cursor_page, decode_cursor, encode_cursor, page_limit

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


SEARCH_FIELDS = {
    Entity.PERSON: {"custom_fields", "email", "notes", "phone", "name"},
    Entity.ORGANIZATION: {"address", "custom_fields", "notes", "name"},
    Entity.DEAL: {"custom_fields", "notes", "title"},
}
ITEM_TYPES = ("deal", "person", "organization", "product", "lead", "file", "mail_attachment", "project")


def _term(params) -> tuple[str, bool]:
    term = (params.get("term") or "").strip()
    exact = params.get("exact_match") == "true"
    if len(term) < (1 if exact else 2):
        raise ApiError(400, "term must be at least 2 characters long (1 with exact_match)")
    return term, exact


def _candidates(record, entity: str, fields: set[str], custom_codes: list[str]) -> list[str]:
    found = []
    if "name" in fields and entity != Entity.DEAL:
        found.append(record.name)
    if "title" in fields and entity == Entity.DEAL:
        found.append(record.title)
    if "email" in fields:
        found += [e["value"] for e in record.attributes.get("emails", [])]
    if "phone" in fields:
        found += [p["value"] for p in record.attributes.get("phones", [])]
    if "address" in fields and isinstance(record.attributes.get("address"), dict):
        found.append(record.attributes["address"].get("value") or "")
    if "notes" in fields and record.attributes.get("notes"):
        found.append(record.attributes["notes"])
    found += [str(record.custom_fields[c]) for c in custom_codes if record.custom_fields.get(c) is not None]
    return [str(c) for c in found]


def _matching(company: Company, entity: str, fields: set[str], term: str, exact: bool, params) -> list:
    rows = MODELS[entity].objects.filter(company=company, is_deleted=False).select_related("owner")
    if entity == Entity.PERSON and params.get("organization_id"):
        rows = rows.filter(org_id=params["organization_id"])
    if entity == Entity.DEAL:
        rows = rows.select_related("stage", "person", "org")
        if params.get("organization_id"):
            rows = rows.filter(org_id=params["organization_id"])
        if params.get("person_id"):
            rows = rows.filter(person_id=params["person_id"])
        if params.get("status"):
            rows = rows.filter(status__in=params["status"].split(","))
    custom_codes = _searchable_custom(company, entity) if "custom_fields" in fields else []
    return [
        (record, custom_codes)
        for record in rows.order_by("id")
        if any(_matches(c, term, exact) for c in _candidates(record, entity, fields, custom_codes))
    ]


def _item(record, entity: str, custom_codes: list[str]) -> dict:
    item = {
        "id": record.id,
        "type": entity,
        "visible_to": record.attributes.get("visible_to", 3),
        "owner": {"id": record.owner_id} if record.owner_id else None,
        "custom_fields": [
            str(record.custom_fields[c]) for c in custom_codes if record.custom_fields.get(c) is not None
        ],
        "notes": [record.attributes["notes"]] if record.attributes.get("notes") else [],
    }
    if entity == Entity.DEAL:
        item.update(
            title=record.title,
            value=record.attributes.get("value", 0),
            currency=record.attributes.get("currency", "USD"),
            status=record.status,
            stage={"id": record.stage_id, "name": record.stage.name},
            person={"id": record.person_id, "name": record.person.name} if record.person_id else None,
            organization={"id": record.org_id, "name": record.org.name} if record.org_id else None,
            is_archived=bool(record.attributes.get("is_archived", False)),
        )
        return item
    item["name"] = record.name
    if entity == Entity.PERSON:
        item["emails"] = [e["value"] for e in record.attributes.get("emails", [])]
        item["phones"] = [p["value"] for p in record.attributes.get("phones", [])]
        if record.org_id:
            item["organization"] = {"id": record.org_id, "name": record.org.name}
    else:
        address = record.attributes.get("address")
        item["address"] = address.get("value") if isinstance(address, dict) else None
    return drop_none(item)


def search_records(company: Company, entity: str, params) -> tuple[list[dict], str | None]:
    """GET /api/v2/{persons,organizations,deals}/search."""
    term, exact = _term(params)
    allowed = SEARCH_FIELDS[entity]
    fields = set((params.get("fields") or ",".join(allowed)).split(","))
    if not fields <= allowed:
        raise ApiError(400, f"fields must be among {', '.join(sorted(allowed))}")
    found = _matching(company, entity, fields, term, exact, params)
    page, next_cursor = cursor_page([record for record, _ in found], params)
    codes = dict((record.id, custom) for record, custom in found)
    score = 1.0 if exact else 0.5
    return [{"result_score": score, "item": _item(r, entity, codes[r.id])} for r in page], next_cursor


def search_items(company: Company, params) -> tuple[list[dict], str | None]:
    """GET /api/v2/itemSearch: deals, persons and organizations at once (the sandbox keeps no others)."""
    term, exact = _term(params)
    types = (params.get("item_types") or ",".join(ITEM_TYPES)).split(",")
    if not set(types) <= set(ITEM_TYPES):
        raise ApiError(400, f"item_types must be among {', '.join(ITEM_TYPES)}")
    every_field = set().union(*SEARCH_FIELDS.values()) | {"code", "description"}
    wanted = set((params.get("fields") or ",".join(sorted(every_field))).split(","))
    if not wanted <= every_field:
        raise ApiError(400, f"fields must be among {', '.join(sorted(every_field))}")
    found = []
    for entity in (Entity.DEAL, Entity.PERSON, Entity.ORGANIZATION):
        if entity in types:
            fields = wanted & SEARCH_FIELDS[entity]
            if fields:
                found += [(entity, r, c) for r, c in _matching(company, entity, fields, term, exact, params)]
    # One cursor over the merged list: its position in the result.
    start = decode_cursor(params["cursor"]) if params.get("cursor") else 0
    limit = page_limit(params.get("limit"))
    page = found[start : start + limit]
    more = start + limit < len(found)
    score = 1.0 if exact else 0.5
    items = [{"result_score": score, "item": _item(record, entity, codes)} for entity, record, codes in page]
    return items, (encode_cursor(start + limit) if more else None)


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
