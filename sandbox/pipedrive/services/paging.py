"""Cursor paging of the v2 lists (opaque base64 cursors) and their limit/sort parameters."""

import base64
import json

from django.db.models import Q

from sandbox.pipedrive.services.common import ApiError

MAX_PAGE = 500
DEFAULT_PAGE = 100


def encode_position(position: dict) -> str:
    # Opaque to clients, like Pipedrive's: base64 of where the last page ended.
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_position(cursor: str) -> dict:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        int(position["id"])
        return position
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "Invalid cursor") from None


def encode_cursor(last_id: int) -> str:
    return encode_position({"id": last_id})


def decode_cursor(cursor: str) -> int:
    return int(decode_position(cursor)["id"])


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
        after = decode_position(params["cursor"])
        value = parse_time(after.get("value") or "")
        # Ties on the timestamp are broken by id, so no record is skipped or repeated.
        rows = rows.filter(
            Q(**{f"{sort_by}__{beyond}": value}) | Q(**{sort_by: value, f"id__{beyond}": int(after["id"])})
        )
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    last = page[-1] if page else None
    next_cursor = None
    if more:
        next_cursor = encode_position({"id": last.id, "value": getattr(last, sort_by).isoformat()})
    return page, next_cursor


def parse_time(raw: str):
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(raw.replace(" ", "+"))
    if moment is None:
        raise ApiError(400, "Invalid RFC 3339 timestamp")
    return moment
