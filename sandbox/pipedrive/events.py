"""Webhook payloads of the emulated Pipedrive, v1 and v2, queued with HTTP Basic auth.

v2 (default since 2025-03-17): ``meta.action`` create/change/delete, ``data``, ``previous``;
a merge is a ``delete`` (meta.merged_to_id) plus a ``change`` (meta.merged_from_id).
v1 (legacy): ``event`` "added.deal" …, ``current``, ``previous``; a merge is ``merged.<obj>``
about the survivor plus ``deleted.<obj>`` about the merged record.
"""

import base64
import json
import uuid

from sandbox import clock
from sandbox import webhooks as outbox

V1_ACTIONS = {"create": "added", "change": "updated", "delete": "deleted", "merge": "merged"}


def _matching(company, entity: str, action: str) -> list:
    from sandbox.pipedrive.models import Webhook

    return [
        hook
        for hook in Webhook.objects.filter(company=company).order_by("id")
        if hook.event_object in (entity, "*") and hook.event_action in (action, "*")
    ]


def _headers(hook) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if hook.http_auth_user or hook.http_auth_password:
        pair = f"{hook.http_auth_user or ''}:{hook.http_auth_password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return headers


def v2_body(hook, caller, entity, action, record_id, data, previous, merged_to_id=None, merged_from_id=None):
    meta = {
        "action": action,
        "entity": entity,
        "entity_id": str(record_id),
        "id": str(uuid.uuid4()),
        "company_id": str(caller.company.id),
        "user_id": str(caller.user.id),
        "correlation_id": str(uuid.uuid4()),
        "is_bulk_edit": False,
        "timestamp": clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "type": hook.type,
        "version": "2.0",
        "webhook_id": str(hook.id),
        "webhook_owner_id": str(hook.user_id),
        "change_source": "api",
        "attempt": 1,
        "host": f"{caller.company.domain}.pipedrive.com",
        "permitted_user_ids": [str(caller.user.id)],
    }
    if merged_to_id is not None:
        meta["merged_to_id"] = str(merged_to_id)
    if merged_from_id is not None:
        meta["merged_from_id"] = str(merged_from_id)
    return {"meta": meta, "data": data, "previous": previous}


def v1_body(hook, caller, entity, v1_action, record_id, current, previous):
    now = clock.now()
    return {
        "v": 1,
        "event": f"{v1_action}.{entity}",
        "meta": {
            "v": 1,
            "action": v1_action,
            "object": entity,
            "id": record_id,
            "company_id": caller.company.id,
            "user_id": caller.user.id,
            "host": f"{caller.company.domain}.pipedrive.com",
            "timestamp": int(now.timestamp()),
            "timestamp_micro": int(now.timestamp() * 1_000_000),
            "change_source": "api",
            "is_bulk_update": False,
            "pipedrive_service_name": False,
            "webhook_id": str(hook.id),
        },
        "retry": 0,
        "current": current,
        "previous": previous,
        "matches_filters": {"current": [], "previous": []},
    }


def _queue(hook, body: dict) -> None:
    outbox.queue_delivery(
        service="pipedrive",
        url=hook.subscription_url,
        body=json.dumps(body, separators=(",", ":")).encode(),
        headers=_headers(hook),
    )


def record_changed(
    caller,
    entity,
    action,
    record,
    previous=None,
    previous_full=None,
    merged_to_id=None,
    merged_from_id=None,
    codes=None,
):
    """Queue one delivery per matching webhook for a create, change or delete of ``record``.

    ``previous`` holds the old values of the changed fields (v2); ``previous_full`` the whole
    former object, which v1 sends on change; ``codes`` the custom field codes, when read already.
    """
    from sandbox.pipedrive.services import serialize

    hooks = _matching(caller.company, entity, action)
    if not hooks:
        return
    current = None if action == "delete" else serialize(record, codes)
    for hook in hooks:
        if hook.version == "2.0":
            previous_v2 = None if action == "create" else previous
            body = v2_body(
                hook, caller, entity, action, record.id, current, previous_v2, merged_to_id, merged_from_id
            )
        else:
            v1_action = "merged" if merged_from_id is not None else V1_ACTIONS[action]
            body = v1_body(hook, caller, entity, v1_action, record.id, current, previous_full or previous)
        _queue(hook, body)
