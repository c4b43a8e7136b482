"""The figures of the health page: per sync pair, is everything flowing, and if not, where to look.

Each figure comes with the admin list behind it (``Figure.url``), so every number on the page is a
link to the rows it counts.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.models import Alert, ReplayRun, SyncRecord
from connector.limits.budget import reserve
from connector.limits.ratelimit import PipedriveLimiter, XeroLimiter
from connector.models import ConnectionStatus, DeferredJob, SyncPair, WebhookEvent
from connector.options import pair_options


def admin_list(model_label: str, **filters) -> str:
    """The admin changelist of ``app_model`` filtered by ``filters`` ("" when not registered)."""
    try:
        url = reverse(f"admin:{model_label}_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(filters)}" if filters else url


def admin_change(model_label: str, pk) -> str:
    try:
        return reverse(f"admin:{model_label}_change", args=[pk])
    except NoReverseMatch:
        return ""


@dataclass
class Figure:
    label: str
    value: object
    url: str = ""
    status: str = "ok"  # ok / warn / bad: how the page colours it
    note: str = ""
    permission: str = ""  # needed to open ``url`` (a finance user does not open connection pages)


@dataclass
class HourBar:
    hour: object
    total: int
    failed: int
    url: str = ""
    height: int = 0  # percent of the busiest hour
    failed_height: int = 0
    ok_height: int = 0


@dataclass
class PairHealth:
    pair: object
    figures: list[Figure] = field(default_factory=list)
    hours: list[HourBar] = field(default_factory=list)
    syncs_24h: Figure | None = None
    failures_24h: Figure | None = None
    alerts: list = field(default_factory=list)
    max_hour: int = 1

    @property
    def status(self) -> str:
        statuses = {f.status for f in self.figures} | {"bad" if self.alerts else "ok"}
        return "bad" if "bad" in statuses else "warn" if "warn" in statuses else "ok"


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _connection_figure(service: str, connection, now) -> Figure:

    model = f"{service.lower()}connection"
    url = admin_change(f"connector_{model}", connection.pk)
    permission = f"connector.view_{model}"
    if connection.status != ConnectionStatus.ACTIVE:
        status = connection.get_status_display()
        return Figure(f"{service} connection", status, url, "bad", connection.last_error, permission)
    note = ""
    if connection.expires_at:
        left = connection.expires_at - now
        note = (
            f"token renewed automatically; current one expires in {_age(left)}"
            if left.total_seconds() > 0
            else "token expired; renewed on next use"
        )
    return Figure(f"{service} connection", "Connected", url, "ok", note, permission)


def _webhook_figure(pair, source: str, label: str, last, now) -> Figure:

    url = admin_list("connector_webhookevent", pair__id__exact=pair.pk, source__exact=source)
    if last is None:
        return Figure(f"Last {label} webhook", "none yet", url, "warn")
    hours = pair_options(pair).webhook_silence_alert_hours
    quiet = hours and now - last > timedelta(hours=hours)
    return Figure(f"Last {label} webhook", f"{_age(now - last)} ago", url, "warn" if quiet else "ok")


def pair_health(pair, now=None) -> PairHealth:

    now = now or timezone.now()
    health = PairHealth(pair)
    figures = health.figures
    figures.append(_connection_figure("Xero", pair.xero_connection, now))
    figures.append(_connection_figure("Pipedrive", pair.pipedrive_connection, now))

    events = WebhookEvent.objects.filter(pair=pair)
    last = dict(events.values_list("source").annotate(last=Max("received_at")))
    figures.append(_webhook_figure(pair, WebhookEvent.Source.XERO, "Xero", last.get("xero"), now))
    figures.append(
        _webhook_figure(pair, WebhookEvent.Source.PIPEDRIVE, "Pipedrive", last.get("pipedrive"), now)
    )

    pending = events.filter(status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSING])
    backlog = pending.aggregate(n=Count("id"), oldest=Min("received_at"))
    inbox_url = admin_list("connector_webhookevent", pair__id__exact=pair.pk, status__exact="pending")
    oldest = backlog["oldest"]
    age = now - oldest if oldest else timedelta(0)
    figures.append(
        Figure(
            "Waiting in the inbox",
            backlog["n"],
            inbox_url,
            "warn" if age > timedelta(minutes=10) else "ok",
            f"oldest waiting {_age(age)}" if oldest else "nothing waiting",
        )
    )

    failed_inbox = events.filter(status=WebhookEvent.Status.FAILED).count()
    figures.append(
        Figure(
            "Failed inbox events",
            failed_inbox,
            admin_list("connector_webhookevent", pair__id__exact=pair.pk, status__exact="failed"),
            "bad" if failed_inbox else "ok",
        )
    )

    since = now - timedelta(hours=24)
    records = SyncRecord.objects.filter(pair=pair, finished_at__gte=since)
    # "failures", not "failed": SyncRecord has a "failed" attribute the annotation would shadow
    rows = (
        records.annotate(hour=TruncHour("finished_at"))
        .values("hour")
        .annotate(total=Count("id"), failures=Count("id", filter=Q(outcome="failed")))
    )
    by_hour = {row["hour"]: row for row in rows}
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    for n in range(24):
        hour = start + timedelta(hours=n)
        row = by_hour.get(hour, {"total": 0, "failures": 0})
        url = admin_list(
            "audit_syncrecord",
            pair__id__exact=pair.pk,
            finished_at__gte=hour.isoformat(sep=" "),
            finished_at__lt=(hour + timedelta(hours=1)).isoformat(sep=" "),
        )
        health.hours.append(HourBar(hour, row["total"], row["failures"], url))
    health.max_hour = max([bar.total for bar in health.hours] + [1])
    for bar in health.hours:
        bar.height = round(100 * bar.total / health.max_hour)
        bar.failed_height = round(100 * bar.failed / health.max_hour)
        bar.ok_height = bar.height - bar.failed_height
    total = sum(bar.total for bar in health.hours)
    failed = sum(bar.failed for bar in health.hours)
    list_24h = {"pair__id__exact": pair.pk, "period": "24h"}
    health.syncs_24h = Figure("Syncs (24 h)", total, admin_list("audit_syncrecord", **list_24h))
    health.failures_24h = Figure(
        "Failures (24 h)",
        failed,
        admin_list("audit_syncrecord", **list_24h, outcome__exact="failed"),
        "bad" if failed else "ok",
    )
    figures.append(health.syncs_24h)
    figures.append(health.failures_24h)

    tenant = pair.xero_connection.tenant_id
    if tenant:
        xero = XeroLimiter(tenant)
        minute, day = xero.remaining("minute"), xero.remaining("day")
        day_limit = int(getattr(settings, "XERO_DAY_LIMIT", 5000))
        figures.append(
            Figure(
                "Xero calls left today",
                f"{day:,} of {day_limit:,}",
                admin_list("connector_apiratewindow", service="xero"),
                "warn" if day < day_limit // 10 else "ok",
                f"{minute} left this minute",
            )
        )
    company = pair.pipedrive_connection.company_id
    if company:
        left = PipedriveLimiter(str(company)).remaining("daily-tokens")
        daily = int(getattr(settings, "PIPEDRIVE_DAILY_TOKENS", 30000))
        figures.append(
            Figure(
                "Pipedrive budget left today",
                f"{left:,} of {daily:,} tokens",
                admin_list("connector_apiratewindow", service="pipedrive"),
                "bad" if left < reserve() else "warn" if left < daily // 10 else "ok",
                "resets at midnight UTC",
            )
        )
        waiting = DeferredJob.objects.filter(scope=str(company), status=DeferredJob.Status.WAITING)
        first = waiting.order_by("run_after").first()
        figures.append(
            Figure(
                "Deferred work",
                waiting.count(),
                admin_list("connector_deferredjob", status__exact="waiting"),
                "warn" if first else "ok",
                f"resumes {first.run_after:%d %b %H:%M} UTC" if first else "nothing deferred",
            )
        )
    health.alerts = list(Alert.objects.filter(pair=pair, cleared_at__isnull=True))
    figures.append(
        Figure(
            "Open alerts",
            len(health.alerts),
            admin_list("audit_alert", pair__id__exact=pair.pk, state="open"),
            "bad" if health.alerts else "ok",
        )
    )
    return health


@dataclass
class Health:
    pairs: list[PairHealth]
    open_alerts: list
    recent_alerts: list
    replays: list
    failed_url: str


def health(now=None, user=None) -> Health:
    """The whole page: every pair's figures, the alerts open and recently cleared, recent bulk replays.
    With ``user``, figures link only to pages the user may open."""
    pairs = SyncPair.objects.select_related("xero_connection", "pipedrive_connection").order_by("name")
    healths = [pair_health(pair, now) for pair in pairs]
    if user is not None:
        for item in healths:
            for figure in item.figures:
                if figure.permission and not user.has_perm(figure.permission):
                    figure.url = ""
    return Health(
        pairs=healths,
        open_alerts=list(Alert.objects.filter(cleared_at__isnull=True).select_related("pair")[:20]),
        recent_alerts=list(Alert.objects.filter(cleared_at__isnull=False).select_related("pair")[:10]),
        replays=list(ReplayRun.objects.all()[:5]),
        failed_url=admin_list("audit_syncrecord", outcome__exact="failed"),
    )
