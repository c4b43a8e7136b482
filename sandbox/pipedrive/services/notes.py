"""Notes (v1): create, list with offset paging, and the v1 note shape."""

from sandbox import clock
from sandbox.pipedrive.models import Company, Entity, Note
from sandbox.pipedrive.services.common import ApiError
from sandbox.pipedrive.services.paging import page_limit
from sandbox.pipedrive.services.records import body_int, get_record


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
            targets[key.removesuffix("_id")] = get_record(caller.company, entity, body_int(body[key], key))
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
