"""Outgoing webhooks of the emulators: a durable outbox, signed or authenticated per service.

INTERFACE (stable; the Xero and Pipedrive emulators call these):

- ``emit_xero_event(tenant_id, category, event_type, resource_id, event_date=None)``:
  a write in sandbox Xero happened; queue it for every subscription of that tenant's
  app (batched, signed with x-xero-signature).
- ``queue_delivery(service, url, body, headers)``: generic outbox entry (Pipedrive
  builds its own v1/v2 bodies and Basic-auth header and calls this).
- ``deliver_pending(limit=100) -> int``: send what is due now; returns how many were sent.

How it works: every delivery is a ``WebhookDelivery`` row holding the exact bytes to
send. Xero events for one subscription are appended to its open (not yet tried)
delivery, so the writes of one transaction, or of a short window, arrive as one batch,
like Xero's. After the commit a django-q2 task (``deliver_pending``) sends what is
due; ``manage.py sandbox_deliver --loop`` does the same as a separate process. A
failed delivery is retried with back-off on the service's own schedule, scaled by
``sandbox.clock``; the fault switches drop, duplicate or reorder deliveries.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import string
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F

from sandbox import clock, faults
from sandbox.models import Service, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)

XERO_CATEGORIES = ("CONTACT", "INVOICE", "PAYMENT", "CREDITNOTE")
XERO_EVENT_TYPES = ("CREATE", "UPDATE")  # Xero sends no DELETE events (xero-api.md §1.5)
XERO_RESOURCE_PATHS = {
    "CONTACT": "Contacts",
    "INVOICE": "Invoices",
    "PAYMENT": "Payments",
    "CREDITNOTE": "CreditNotes",
}
XERO_RESOURCE_BASE = "https://api.xero.com/api.xro/2.0"  # what real events carry in resourceUrl

# Events queued within this many sandbox seconds join the same, not yet tried, delivery.
BATCH_WINDOW_SECONDS = 5


@dataclass(frozen=True)
class DeliveryPolicy:
    """How a service retries: request timeout, delays before each retry, and when it gives up."""

    timeout_seconds: float
    retry_delays: tuple[float, ...]  # sandbox seconds after attempt 1, 2, ...; the last one repeats
    give_up_after: float | None  # sandbox seconds since the first attempt; None: after the delays run out
    max_attempts: int | None


POLICIES = {
    # Xero: 5 s to answer; retried "with decreasing frequency for up to 24 hours" (immediately,
    # then backing off to every 15 minutes), then the webhook is disabled (xero-api.md §1.2, §1.4).
    Service.XERO: DeliveryPolicy(
        timeout_seconds=5,
        retry_delays=(0, 60, 120, 240, 480, 900),
        give_up_after=24 * 3600,
        max_attempts=None,
    ),
    # Pipedrive: 10 s to answer; 3 more tries after 3, 30 and 150 s (pipedrive-api.md §6.5).
    Service.PIPEDRIVE: DeliveryPolicy(
        timeout_seconds=10, retry_delays=(3, 30, 150), give_up_after=None, max_attempts=4
    ),
}


# ---------------------------------------------------------------- Xero subscriptions


def new_xero_webhook_key() -> str:
    """A key shaped like the developer portal's (88 base64 characters)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def register_xero_webhook(
    client_id: str, url: str, signing_key: str = "", categories: str = "CONTACT,INVOICE"
) -> WebhookSubscription:
    """What a developer does in Xero's portal: add a webhook to an app; the key is generated."""
    unknown = {c.strip().upper() for c in categories.split(",") if c.strip()} - set(XERO_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown Xero webhook categories: {', '.join(sorted(unknown))}")
    return WebhookSubscription.objects.create(
        service=Service.XERO,
        app_ref=client_id,
        url=url,
        signing_key=signing_key or new_xero_webhook_key(),
        categories=categories.upper(),
    )


def xero_signature(body: bytes, key: str) -> str:
    """``x-xero-signature``: base64 of the HMAC-SHA256 of the raw body with the webhook key."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


def _xero_date(moment: dt.datetime) -> str:
    # Xero writes UTC without a zone suffix and with milliseconds: 2024-06-21T01:15:39.902
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _encode(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _connected_client_ids(tenant_id: str) -> set[str]:
    # Lazy: sandbox.xero owns its connections and imports this module for its writes.
    from sandbox.xero.services import connected_client_ids

    return set(connected_client_ids(tenant_id))


def emit_xero_event(
    tenant_id: str,
    category: str,
    event_type: str,
    resource_id: str,
    event_date: dt.datetime | None = None,
    data: dict | None = None,
) -> None:
    """Queue one Xero event for every active webhook of an app connected to the tenant.

    ``data``: what CREDITNOTE events carry besides the ids (the credit note's Type and Status)."""
    category, event_type = category.upper(), event_type.upper()
    if category not in XERO_CATEGORIES:
        raise ValueError(f"Xero sends no webhooks for {category!r}")
    if event_type not in XERO_EVENT_TYPES:
        raise ValueError(f"Xero webhook events are CREATE or UPDATE, not {event_type!r}")
    client_ids = _connected_client_ids(str(tenant_id))
    if not client_ids:
        return
    subscriptions = WebhookSubscription.objects.filter(
        service=Service.XERO, active=True, app_ref__in=client_ids
    )
    event = {
        "resourceUrl": f"{XERO_RESOURCE_BASE}/{XERO_RESOURCE_PATHS[category]}/{resource_id}",
        "resourceId": str(resource_id),
        "eventDateUtc": _xero_date(event_date or clock.now()),
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": str(tenant_id),
        "tenantType": "ORGANISATION",
    }
    if data is not None:
        event["data"] = data
    queued = False
    for subscription in subscriptions:
        if category in subscription.category_list:
            _append_xero_event(subscription, event)
            queued = True
    if queued:
        _schedule_delivery()


def _append_xero_event(subscription: WebhookSubscription, event: dict) -> None:
    """Add the event to the subscription's open batch, or open a new one; re-sign the batch."""
    now = clock.now()
    with transaction.atomic():
        # Sequence numbers: one counter per webhook, bumped in the database (no lost update).
        WebhookSubscription.objects.filter(pk=subscription.pk).update(last_sequence=F("last_sequence") + 1)
        sequence = WebhookSubscription.objects.values_list("last_sequence", flat=True).get(pk=subscription.pk)
        open_batch = (
            WebhookDelivery.objects.select_for_update()
            .filter(
                subscription=subscription,
                status=WebhookDelivery.Status.PENDING,
                attempts=0,
                created_at__gte=now - clock.duration(BATCH_WINDOW_SECONDS),
            )
            .order_by("-created_at")
            .first()
        )
        if open_batch is not None:
            payload = json.loads(open_batch.body)
            payload["events"].append(event)
            payload["lastEventSequence"] = sequence
            body = _encode(payload)
            # Only while still unclaimed (the sender claims a row by moving it out of PENDING) and
            # unchanged since read (two writers never overwrite each other's event).
            if WebhookDelivery.objects.filter(
                pk=open_batch.pk,
                status=WebhookDelivery.Status.PENDING,
                attempts=0,
                event_count=open_batch.event_count,
            ).update(
                body=body,
                headers=_xero_headers(body, subscription.signing_key),
                event_count=len(payload["events"]),
            ):
                return
        payload = {
            "events": [event],
            "firstEventSequence": sequence,
            "lastEventSequence": sequence,
            "entropy": _entropy(),
        }
        body = _encode(payload)
        WebhookDelivery.objects.create(
            service=Service.XERO,
            subscription=subscription,
            url=subscription.url,
            headers=_xero_headers(body, subscription.signing_key),
            body=body,
            event_count=1,
            next_attempt_at=now,
            created_at=now,
        )


def _xero_headers(body: str, key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "x-xero-signature": xero_signature(body.encode(), key),
    }


# ---------------------------------------------------------------- generic outbox


def queue_delivery(service: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    """Queue one request exactly as given (Pipedrive signs nothing; it sends Basic auth)."""
    now = clock.now()
    text = body.decode() if isinstance(body, bytes | bytearray) else str(body)
    WebhookDelivery.objects.create(
        service=service,
        url=url,
        headers=dict(headers),
        body=text,
        event_count=1,
        next_attempt_at=now,
        created_at=now,
    )
    _schedule_delivery()


def _schedule_delivery() -> None:
    """After the commit, ask a worker to send (inline in tests: django-q2 sync mode)."""
    if not getattr(settings, "SANDBOX_WEBHOOK_AUTODELIVER", True):
        return

    def enqueue():
        from django_q.tasks import async_task

        async_task("sandbox.webhooks.deliver_pending", task_name="sandbox webhook delivery")

    transaction.on_commit(enqueue)


# ---------------------------------------------------------------- sending


def deliver_pending(limit: int = 100) -> int:
    """Send the deliveries that are due; returns how many were answered 2xx.

    Each row is claimed with a conditional UPDATE before it is sent, so two senders
    (the task and ``sandbox_deliver --loop``) never send the same try twice. A claim is
    a lease: a row left "sending" by a sender that died is due again once it expires.
    The row is read again after the claim: a write may have appended an event to it
    since it was listed, and what is sent must be exactly what is stored (appends stop
    at the claim, see ``_append_xero_event``).
    """
    now = clock.now()
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SENDING, next_attempt_at__lte=now).update(
        status=WebhookDelivery.Status.PENDING
    )
    due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
    batch = list(due.order_by("created_at", "pk").values_list("pk", "service", "next_attempt_at")[:limit])
    reordered = {service for service in Service.values if faults.get(service).webhook_reorder}
    if reordered:
        # The reorder fault: that service's due deliveries go out newest first.
        newest_first = iter([d for d in reversed(batch) if d[1] in reordered])
        batch = [next(newest_first) if d[1] in reordered else d for d in batch]
    sent = 0
    for pk, service, next_attempt_at in batch:
        lease = 3 * POLICIES[Service(service)].timeout_seconds + 30  # real seconds, not scaled
        claimed = WebhookDelivery.objects.filter(
            pk=pk, status=WebhookDelivery.Status.PENDING, next_attempt_at=next_attempt_at
        ).update(status=WebhookDelivery.Status.SENDING, next_attempt_at=now + dt.timedelta(seconds=lease))
        if claimed:
            sent += _attempt(WebhookDelivery.objects.get(pk=pk))
    return sent


def _attempt(delivery: WebhookDelivery) -> int:
    switch = faults.get(delivery.service)
    policy = POLICIES[Service(delivery.service)]
    first_try = delivery.attempts == 0
    if first_try and faults.roll(switch.webhook_drop_rate):
        _save(
            delivery,
            status=WebhookDelivery.Status.DROPPED,
            last_error="dropped by the webhook_drop_rate fault",
        )
        return 0
    copies = 2 if first_try and faults.roll(switch.webhook_duplicate_rate) else 1
    status, error = None, ""
    for _ in range(copies):
        status, error = _post(delivery, policy.timeout_seconds)
    now = clock.now()
    attempts = delivery.attempts + 1
    if status is not None and 200 <= status < 300:
        _save(
            delivery,
            status=WebhookDelivery.Status.SENT,
            attempts=attempts,
            last_status=status,
            last_error=error,
            sent_at=now,
        )
        return 1
    retry_at = _next_attempt(delivery, policy, attempts, now)
    if retry_at is None:
        _save(
            delivery,
            status=WebhookDelivery.Status.FAILED,
            attempts=attempts,
            last_status=status,
            last_error=error,
        )
        if delivery.service == Service.XERO and delivery.subscription_id:
            # Xero disables a webhook after a day of failures; re-enabling needs intent to receive.
            WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(active=False)
    else:
        _save(
            delivery,
            status=WebhookDelivery.Status.PENDING,
            attempts=attempts,
            last_status=status,
            last_error=error,
            next_attempt_at=retry_at,
        )
    return 0


def _next_attempt(
    delivery: WebhookDelivery, policy: DeliveryPolicy, attempts: int, now: dt.datetime
) -> dt.datetime | None:
    """When to try again after ``attempts`` failed tries, or None when the service gives up."""
    if policy.max_attempts is not None and attempts >= policy.max_attempts:
        return None
    delay = policy.retry_delays[min(attempts, len(policy.retry_delays)) - 1]
    retry_at = now + clock.duration(delay)
    if policy.give_up_after is not None and retry_at > delivery.created_at + clock.duration(
        policy.give_up_after
    ):
        return None
    return retry_at


def _post(delivery: WebhookDelivery, timeout: float) -> tuple[int | None, str]:
    try:
        response = requests.post(
            delivery.url,
            data=delivery.body.encode(),
            headers=delivery.headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        log.info("sandbox webhook to %s failed: %s", delivery.url, exc)
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    error = "" if response.ok else f"HTTP {response.status_code}: {response.text[:500]}"
    return response.status_code, error


def _save(delivery: WebhookDelivery, **values) -> None:
    for name, value in values.items():
        setattr(delivery, name, value)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**values)


# ---------------------------------------------------------------- intent to receive


def intent_to_receive(subscription: WebhookSubscription) -> dict:
    """Xero's handshake: an empty batch signed correctly (expects 200) and one signed wrongly (expects 401).

    Returns a report: each check's expected and actual status, and whether all passed.
    A pass records ``intent_verified_at`` and re-enables the webhook, as the portal does.
    """
    body = (
        '{"events":[],"firstEventSequence": 0,"lastEventSequence": 0, "entropy": "' + _entropy() + '"}'
    ).encode()
    good = xero_signature(body, subscription.signing_key)
    checks = []
    for label, signature, expected in (
        ("correctly signed", good, 200),
        ("incorrectly signed", _corrupt(good), 401),
    ):
        status, error = None, ""
        try:
            response = requests.post(
                subscription.url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8", "x-xero-signature": signature},
                timeout=POLICIES[Service.XERO].timeout_seconds,
                allow_redirects=False,
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        checks.append(
            {
                "payload": label,
                "expected": expected,
                "status": status,
                "passed": status == expected,
                "error": error,
            }
        )
    passed = all(check["passed"] for check in checks)
    if passed:
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            intent_verified_at=clock.now(), active=True
        )
    return {"subscription": subscription.pk, "url": subscription.url, "passed": passed, "checks": checks}


def _corrupt(signature: str) -> str:
    """The signature with one character changed, as Xero's deliberately bad payloads have."""
    first = signature[0]
    return ("B" if first == "A" else "A") + signature[1:]


# ---------------------------------------------------------------- reading


def subscription_as_dict(subscription: WebhookSubscription) -> dict:
    return {
        "id": subscription.pk,
        "service": subscription.service,
        "app_ref": subscription.app_ref,
        "url": subscription.url,
        "has_signing_key": bool(subscription.signing_key),  # the key itself is never answered
        "categories": subscription.category_list,
        "active": subscription.active,
        "intent_verified_at": subscription.intent_verified_at.isoformat()
        if subscription.intent_verified_at
        else None,
    }


SECRET_HEADERS = {"authorization"}


def headers_shown(headers: dict) -> dict:
    """A delivery's headers as pages show them: credentials (Pipedrive's Basic auth) masked."""
    return {
        name: "(hidden)" if name.lower() in SECRET_HEADERS else value
        for name, value in (headers or {}).items()
    }


def delivery_as_dict(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.pk,
        "service": delivery.service,
        "subscription": delivery.subscription_id,
        "url": delivery.url,
        "status": delivery.status,
        "event_count": delivery.event_count,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at.isoformat(),
        "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
    }
