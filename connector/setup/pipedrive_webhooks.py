"""Registering the pair's Pipedrive webhooks through the API.

The pair's webhook password is generated and never shown, so the connector registers the
webhooks itself: one per object the links care about (organization, person, deal), every
action, v2 payloads, HTTP Basic auth with the pair's credentials. Registering again is safe:
webhooks already pointing at the pair's receiver with the right settings are kept, duplicates
and stale ones removed. Costs one list (10 tokens) plus 10 tokens per webhook created.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from connector.connections.services import pipedrive_client

WEBHOOK_OBJECTS = ("organization", "person", "deal")
WEBHOOK_NAME = "ml-connector"


@dataclass
class Registration:
    """What registering did: the receiver URL and the webhook ids created, kept and deleted."""

    url: str
    created: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    def __str__(self):
        return (
            f"Pipedrive webhooks for {', '.join(WEBHOOK_OBJECTS)} send to {self.url}: "
            f"{len(self.created)} created, {len(self.kept)} already in place, {len(self.deleted)} removed."
        )


def receiver_url(pair) -> str:
    return settings.PUBLIC_BASE_URL + reverse("webhooks:pipedrive", args=[pair.key])


def _is_current(hook: dict, pair, event_object: str) -> bool:
    return (
        hook.get("event_object") == event_object
        and hook.get("event_action") == "*"
        and str(hook.get("version")) == "2.0"
        and (hook.get("http_auth_user") or "") == pair.pipedrive_webhook_user
    )


def register_pipedrive_webhooks(pair, *, replace: bool = False, client=None) -> Registration:
    """Make the pair's Pipedrive company send organization, person and deal events to the pair.

    ``replace`` deletes and re-creates the pair's webhooks (after a password change).
    """
    client = client or pipedrive_client(pair.pipedrive_connection)
    report = Registration(receiver_url(pair))
    ours = [h for h in client.list_webhooks() or [] if h.get("subscription_url") == report.url]
    keep = {}
    if not replace:
        for hook in ours:
            for event_object in WEBHOOK_OBJECTS:
                if event_object not in keep and _is_current(hook, pair, event_object):
                    keep[event_object] = hook["id"]
    for hook in ours:
        if hook["id"] not in keep.values():
            client.delete_webhook(hook["id"])
            report.deleted.append(hook["id"])
    for event_object in WEBHOOK_OBJECTS:
        if event_object in keep:
            report.kept.append(keep[event_object])
            continue
        created = client.create_webhook(
            {
                "subscription_url": report.url,
                "event_action": "*",
                "event_object": event_object,
                "name": f"{WEBHOOK_NAME}: {pair.name}"[:100],
                "version": "2.0",
                "http_auth_user": pair.pipedrive_webhook_user,
                "http_auth_password": pair.pipedrive_webhook_password,
            }
        )
        report.created.append(created["id"])
    return report
