"""Alerts: incidents about a pair's health, each e-mailed once when it opens and cleared when its
cause is gone.

``current_incidents`` looks at the connections, the inbox, the budget, deferred work and recent
failures and says what is wrong now (each incident has a stable key); ``evaluate`` (a django-q2
schedule, every five minutes) opens an Alert for each new key, sends its one e-mail, keeps the
open ones' messages current and clears those whose cause is gone.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from audit.models import Alert, SyncRecord
from connector.limits.budget import reserve
from connector.limits.ratelimit import PipedriveLimiter
from connector.models import ConnectionStatus, DeferredJob, SyncPair, WebhookEvent
from connector.options import pair_options

logger = logging.getLogger(__name__)

Kind = Alert.Kind


@dataclass
class Incident:
    key: str
    kind: str
    message: str
    pair: "SyncPair | None" = None


def recipients() -> list[str]:
    """``ALERT_EMAILS`` (comma-separated), else the addresses in ``ADMINS``."""
    configured = getattr(settings, "ALERT_EMAILS", None)
    if configured:
        if isinstance(configured, str):
            configured = configured.split(",")
        return [address.strip() for address in configured if address.strip()]
    return [address for _name, address in getattr(settings, "ADMINS", [])]


def failure_threshold() -> int:
    return int(getattr(settings, "ALERT_FAILURES_PER_HOUR", 10))


def _connection_incidents(pair) -> list[Incident]:

    found = []
    for service, connection in (("Xero", pair.xero_connection), ("Pipedrive", pair.pipedrive_connection)):
        if connection.status == ConnectionStatus.BROKEN:
            found.append(
                Incident(
                    f"connection:{service.lower()}:{connection.pk}",
                    Kind.CONNECTION_BROKEN,
                    f"The {service} connection “{connection}” is broken: "
                    f"{connection.last_error or 'refused'}. "
                    f"Nothing syncs for “{pair.name}” until an integration admin reconnects it "
                    f"(Admin → {service} connections → {connection} → Connect again).",
                    pair,
                )
            )
    return found


def _silence_incidents(pair, now) -> list[Incident]:

    options = pair_options(pair)
    hours = options.webhook_silence_alert_hours
    since = now - timedelta(hours=hours)
    if not hours or options.reconciliation_only or pair.created_at > since:
        return []  # off, no webhooks by design, or the pair is younger than the silence allowed
    last = dict(
        WebhookEvent.objects.filter(pair=pair).values_list("source").annotate(last=Max("received_at"))
    )
    # Writes old enough for their webhook to have come back (Pipedrive sends it within seconds).
    writes = SyncRecord.objects.filter(
        pair=pair,
        finished_at__gte=since,
        finished_at__lt=now - timedelta(minutes=15),
        outcome__in=["created", "updated"],
    )
    found = []
    for source, label in ((WebhookEvent.Source.XERO, "Xero"), (WebhookEvent.Source.PIPEDRIVE, "Pipedrive")):
        received = last.get(source)
        if received is not None and received >= since:
            continue
        if source == WebhookEvent.Source.PIPEDRIVE:
            # Pipedrive sends a webhook for the connector's own writes: writes without one mean silence.
            expected = writes.exists()
            why = "the connector wrote to Pipedrive meanwhile, which Pipedrive reports by webhook"
        else:
            # Xero has sent before (changes are made there), or other syncs found changes it never sent.
            expected = received is not None or writes.exclude(trigger="webhook").exists()
            why = "Xero sent webhooks before" if received is not None else "changes were found without them"
        if expected:
            seen = f"last one {received:%Y-%m-%d %H:%M} UTC" if received else "none received yet"
            found.append(
                Incident(
                    f"silent:{pair.pk}:{source}",
                    Kind.WEBHOOKS_SILENT,
                    f"No {label} webhook for “{pair.name}” in {hours} hours ({seen}), though {why}. "
                    f"Check the webhook in {label} (its URL is on the sync pair's page).",
                    pair,
                )
            )
    return found


def budget_usage_today(pair, now) -> str:
    """What used Pipedrive's budget today, in syncs by cause (the connector does not bill tokens per row)."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        SyncRecord.objects.filter(
            pair__pipedrive_connection=pair.pipedrive_connection, finished_at__gte=start
        )
        .exclude(outcome__in=["unchanged", "skipped"])
        .values("trigger")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    parts = [f"{row['n']} {row['trigger']} sync(s)" for row in rows]
    return ", ".join(parts) or "no record syncs (index listings, searches, setup)"


def _budget_incidents(pair, now, seen_companies: set) -> list[Incident]:

    company = pair.pipedrive_connection.company_id
    if not company or company in seen_companies:
        return []
    seen_companies.add(company)
    found = []
    limiter = PipedriveLimiter(str(company))
    left = limiter.remaining("daily-tokens")
    daily = int(getattr(settings, "PIPEDRIVE_DAILY_TOKENS", 30000))
    if left < max(reserve(), daily // 10):
        found.append(
            Incident(
                f"budget:{company}",
                Kind.BUDGET_LOW,
                f"Pipedrive's daily API budget for {pair.pipedrive_connection} is low: {left:,} of {daily:,} "
                f"tokens left. The budget is 30,000 tokens x the plan's multiplier x the number of seats "
                f"(PIPEDRIVE_DAILY_TOKENS); today it was used by {budget_usage_today(pair, now)}. "
                f"Non-urgent work waits for the reset at midnight UTC.",
                pair,
            )
        )
    waiting = DeferredJob.objects.filter(
        service="pipedrive", scope=str(company), status=DeferredJob.Status.WAITING, run_after__gt=now
    )
    first = waiting.order_by("run_after").first()
    if first is not None:
        found.append(
            Incident(
                f"deferred:{company}",
                Kind.WORK_DEFERRED,
                f"{waiting.count()} job(s) for {pair.pipedrive_connection} wait for tomorrow's "
                f"Pipedrive budget "
                f"(first: {first.job_name}, resumes {first.run_after:%Y-%m-%d %H:%M} UTC).",
                pair,
            )
        )
    return found


def _failure_incidents(pair, now) -> list[Incident]:
    failed = SyncRecord.objects.filter(
        pair=pair, outcome=SyncRecord.Outcome.FAILED, finished_at__gte=now - timedelta(hours=1)
    ).count()
    if failed < failure_threshold():
        return []
    return [
        Incident(
            f"failures:{pair.pk}",
            Kind.FAILURES,
            f"{failed} records of “{pair.name}” failed to sync in the last hour (alert from "
            f"{failure_threshold()}). Open the failed sync records to see why, fix the cause, "
            "and replay them.",
            pair,
        )
    ]


def current_incidents(now=None) -> list[Incident]:

    now = now or timezone.now()
    incidents: list[Incident] = []
    companies: set = set()
    pairs = SyncPair.objects.filter(enabled=True).select_related("xero_connection", "pipedrive_connection")
    for pair in pairs:
        incidents += _connection_incidents(pair)
        incidents += _silence_incidents(pair, now)
        incidents += _budget_incidents(pair, now, companies)
        incidents += _failure_incidents(pair, now)
    unique: dict[str, Incident] = {}
    for incident in incidents:  # one connection shared by two pairs is one incident
        unique.setdefault(incident.key, incident)
    return list(unique.values())


def _send(alert: Alert) -> None:
    to = recipients()
    if not to:
        logger.warning("Alert without recipients (set ALERT_EMAILS or ADMINS): %s", alert.message)
        return
    subject = f"[ml-connector] {alert.get_kind_display()}" + (f": {alert.pair}" if alert.pair else "")
    body = (
        f"{alert.message}\n\nOpened {alert.opened_at:%Y-%m-%d %H:%M} UTC. You get one e-mail per incident; "
        "the health page shows when it clears."
    )
    send_mail(subject, body, None, to)
    Alert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now(), recipients=", ".join(to))


def evaluate(now=None) -> dict:
    """Open, refresh and clear alerts; ``{"opened": n, "open": n, "cleared": n}``."""
    now = now or timezone.now()
    incidents = current_incidents(now)
    opened = 0
    for incident in incidents:
        current = Alert.objects.filter(key=incident.key, cleared_at__isnull=True).first()
        if current is not None:
            Alert.objects.filter(pk=current.pk).update(last_seen_at=now, message=incident.message)
            continue
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    key=incident.key,
                    kind=incident.kind,
                    pair=incident.pair,
                    message=incident.message,
                    last_seen_at=now,
                )
        except IntegrityError:  # another evaluator opened it a moment ago (and e-mails it)
            continue
        opened += 1
        _send(alert)
    keys = {incident.key for incident in incidents}
    cleared = Alert.objects.filter(cleared_at__isnull=True).exclude(key__in=keys).update(cleared_at=now)
    return {"opened": opened, "open": len(keys), "cleared": cleared}
