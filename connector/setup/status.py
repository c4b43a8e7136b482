"""The guided setup of a sync: where each step stands, and the steps' actions (each safe to repeat).

The steps, in order: connect Xero (an organisation chosen), connect Pipedrive, create the sync
pair, create the recommended custom fields and the "Xero invoices" pipeline, register the
Pipedrive webhooks, paste the Xero webhook key and pass Xero's intent-to-receive, then the first
backfill. ``setup_status`` reads only this database (no API call, no token spent); what happened
on the other services is kept in ``SetupStepResult`` rows by the actions below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from connector.errors import ConnectorError
from connector.models import (
    ConnectionStatus,
    PipedriveConnection,
    SetupStepResult,
    SyncPair,
    WebhookEvent,
    XeroConnection,
)
from connector.setup import pairs, pipedrive_webhooks
from connector.setup import pipedrive_fields as pipedrive_setup
from mapping.models import FieldMapping, RecordLink, StageMapping

logger = logging.getLogger(__name__)

DONE, TODO, FAILED, WAITING = "done", "todo", "failed", "waiting"
INTENT_GRACE = timedelta(minutes=1)
STATE_LABELS = {DONE: "Done", TODO: "To do", FAILED: "Needs attention", WAITING: "After the steps above"}
Step = SetupStepResult.Step


class SetupRefused(ConnectorError):
    """A setup action that cannot run as asked; the message says what to do. Nothing was changed."""


@dataclass
class SetupStep:
    """One line of the setup page: its state, what is there now, and what went wrong (if anything)."""

    key: str
    title: str
    state: str
    summary: str
    problem: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url)

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def done(self) -> bool:
        return self.state == DONE


@dataclass
class SetupStatus:
    """Where the setup of one pair (or of the first pair, before there is one) stands."""

    pair: SyncPair | None
    steps: list[SetupStep]
    xero_connections: list[XeroConnection]
    pipedrive_connections: list[PipedriveConnection]
    xero_webhook_url: str = ""
    sandbox_portal_url: str = ""

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps if step.key != "backfill")

    @property
    def next_step(self) -> SetupStep | None:
        return next((step for step in self.steps if not step.done), None)

    def step(self, key: str) -> SetupStep:
        return next(step for step in self.steps if step.key == key)


def setup_url(pair: SyncPair | None = None) -> str:
    url = reverse("admin:setup")
    return f"{url}?pair={pair.pk}" if pair else url


def _live(queryset):
    return [c for c in queryset.order_by("pk") if c.status != ConnectionStatus.DISCONNECTED]


def _connection_step(key, title, service, chosen, candidates, connect_url) -> SetupStep:
    connect = [(f"Connect {service}", connect_url)]
    if chosen is not None and chosen.status == ConnectionStatus.BROKEN:
        return SetupStep(
            key,
            title,
            FAILED,
            f"{service}: {chosen} is connected but no longer works.",
            chosen.last_error or "The connection was refused.",
            [(f"Reconnect {service}", connect_url)],
        )
    if chosen is not None and chosen.status == ConnectionStatus.ACTIVE:
        return SetupStep(key, title, DONE, f"Connected: {chosen}.", links=connect)
    active = [c for c in candidates if c.status == ConnectionStatus.ACTIVE]
    if active:
        names = ", ".join(str(c) for c in active)
        return SetupStep(key, title, DONE, f"Connected: {names}.", links=connect)
    broken = [c for c in candidates if c.status == ConnectionStatus.BROKEN]
    if broken:
        return SetupStep(
            key,
            title,
            FAILED,
            f"{service}: {broken[0]} is connected but no longer works.",
            broken[0].last_error,
            [(f"Reconnect {service}", connect_url)],
        )
    return SetupStep(
        key, title, TODO, f"Not connected yet: sign in to {service} and allow access.", links=connect
    )


def _result(pair, step) -> SetupStepResult | None:
    return SetupStepResult.objects.filter(pair=pair, step=step).first() if pair else None


def _record(pair, step, ok: bool, message: str) -> None:
    SetupStepResult.objects.update_or_create(
        pair=pair, step=step, defaults={"ok": ok, "message": message[:2000], "at": timezone.now()}
    )


def backfill_url(pair) -> str:
    """The backfill page of the pair, once that admin page exists ('' until then)."""
    try:
        return reverse("admin:connector_syncpair_backfill", args=[pair.pk])
    except NoReverseMatch:
        return ""


def sandbox_base() -> str:
    """The sandbox's address when the Xero API setting points at it ('' for the real Xero)."""
    if not settings.SANDBOX_ENABLED or "/sandbox/xero/" not in settings.XERO_API_URL:
        return ""
    return settings.XERO_API_URL.split("/sandbox/xero/")[0] + "/sandbox"


xero_webhook_url = pairs.xero_webhook_url


def sandbox_control_headers() -> dict[str, str]:
    """What a server-side call to the sandbox's control endpoints sends: its control token."""
    token = settings.SANDBOX_CONTROL_TOKEN
    return {"X-Sandbox-Token": token} if token else {}


def sandbox_portal_url(pair) -> str:
    """The sandbox's stand-in for Xero's developer portal: a new webhook for the pair's app, pre-filled."""
    if not sandbox_base():
        return ""
    try:
        url = reverse("admin:sandbox_webhooksubscription_add")
    except NoReverseMatch:
        return ""
    query = {
        "service": "xero",
        "app_ref": pair.xero_connection.client_id,
        "url": xero_webhook_url(pair),
        "categories": "CONTACT,INVOICE,PAYMENT",
    }
    return f"{url}?{urlencode(query)}"


def setup_status(pair: SyncPair | None = None) -> SetupStatus:
    """Every step's state for ``pair`` (default: the newest pair, the one most likely being set up;
    None before the first pair exists)."""
    if pair is None:
        pair = (
            SyncPair.objects.select_related("xero_connection", "pipedrive_connection").order_by("-pk").first()
        )
    xeros = _live(XeroConnection.objects.all())
    pipedrives = _live(PipedriveConnection.objects.all())
    here = setup_url(pair)
    xero_connect = f"{reverse('connector:xero-start')}?{urlencode({'next': here})}"
    pipedrive_connect = f"{reverse('connector:pipedrive-start')}?{urlencode({'next': here})}"
    steps = [
        _connection_step(
            "xero",
            "Connect Xero and choose the organisation",
            "Xero",
            pair.xero_connection if pair else None,
            xeros,
            xero_connect,
        ),
        _connection_step(
            "pipedrive",
            "Connect Pipedrive",
            "Pipedrive",
            pair.pipedrive_connection if pair else None,
            pipedrives,
            pipedrive_connect,
        ),
    ]
    connected = all(step.done for step in steps)
    if pair is not None:
        steps.append(
            SetupStep(
                "pair",
                "Create the sync pair",
                DONE,
                f"“{pair}” syncs Xero {pair.xero_connection} to Pipedrive {pair.pipedrive_connection}.",
                links=[("Sync pair settings", reverse("admin:connector_syncpair_change", args=[pair.pk]))],
            )
        )
    else:
        steps.append(
            SetupStep(
                "pair",
                "Create the sync pair",
                TODO if connected else WAITING,
                "Join one Xero organisation to one Pipedrive company."
                if connected
                else "Connect Xero and Pipedrive first.",
            )
        )
    if pair is None:
        for key, title in (
            ("pipedrive_setup", "Create the custom fields and the invoice pipeline in Pipedrive"),
            ("pipedrive_webhooks", "Register the Pipedrive webhooks"),
            ("xero_webhook", "Send Xero's changes to the connector (webhook)"),
            ("backfill", "Bring in what Xero already holds (first backfill)"),
        ):
            steps.append(SetupStep(key, title, WAITING, "Create the sync pair first."))
        return SetupStatus(None, steps, xeros, pipedrives)
    usable = all(step.state == DONE for step in steps[:2])
    steps += [
        _pipedrive_setup_step(pair, usable),
        _pipedrive_webhooks_step(pair, usable),
        _xero_webhook_step(pair),
        _backfill_step(pair),
    ]
    return SetupStatus(
        pair,
        steps,
        xeros,
        pipedrives,
        xero_webhook_url=xero_webhook_url(pair),
        sandbox_portal_url=sandbox_portal_url(pair),
    )


def _pipedrive_setup_step(pair, usable: bool) -> SetupStep:
    title = "Create the custom fields and the invoice pipeline in Pipedrive"
    mapped = set(FieldMapping.objects.filter(pair=pair).values_list("target", "source_path"))
    missing = [r for r in pipedrive_setup.RECOMMENDED_FIELDS if (r.target, r.source_path) not in mapped]
    stages = StageMapping.objects.filter(pair=pair, stage_id__isnull=False).count()
    result = _result(pair, Step.PIPEDRIVE_SETUP)
    if result is not None and not result.ok:
        return SetupStep("pipedrive_setup", title, FAILED, "The last attempt did not finish.", result.message)
    if not missing and stages:
        summary = (
            f"{len(pipedrive_setup.RECOMMENDED_FIELDS)} custom fields are mapped (Xero ContactID, "
            f"outstanding, overdue, available credit, links…); {stages} invoice statuses point at "
            f"stages of the “{pipedrive_setup.PIPELINE_NAME}” pipeline."
        )
        return SetupStep("pipedrive_setup", title, DONE, summary, links=_mapping_links())
    if result is not None and result.ok:
        # Ran, but a same-named field of another type was left alone: say which, the run's message says why.
        names = ", ".join(f"{r.target} “{r.name}”" for r in missing) or "the invoice stages"
        return SetupStep(
            "pipedrive_setup",
            title,
            FAILED,
            result.message,
            f"Not mapped: {names}. Rename or remove the Pipedrive field of that name, then run this again.",
            _mapping_links(),
        )
    stage_names = ", ".join(pipedrive_setup.PIPELINE_STAGES)
    summary = (
        "Creates the fields that show Xero's figures on organizations and deals (Xero ContactID, "
        "outstanding, overdue, available credit, invoice number, due date…) and the "
        f"“{pipedrive_setup.PIPELINE_NAME}” pipeline with one stage per invoice status ({stage_names}). "
        "Fields and stages that already exist are reused."
    )
    return SetupStep("pipedrive_setup", title, TODO if usable else WAITING, summary)


def _mapping_links():
    links = []
    for label, name in (("Field mappings", "mapping_fieldmapping"), ("Deal stages", "mapping_stagemapping")):
        try:
            links.append((label, reverse(f"admin:{name}_changelist")))
        except NoReverseMatch:
            continue
    return links


def _pipedrive_webhooks_step(pair, usable: bool) -> SetupStep:
    title = "Register the Pipedrive webhooks"
    result = _result(pair, Step.PIPEDRIVE_WEBHOOKS)
    why = (
        "Pipedrive then tells the connector when an organization or deal is merged or deleted there, so "
        "links stay true."
    )
    if result is None:
        return SetupStep("pipedrive_webhooks", title, TODO if usable else WAITING, why)
    if not result.ok:
        return SetupStep("pipedrive_webhooks", title, FAILED, why, result.message)
    return SetupStep("pipedrive_webhooks", title, DONE, f"{result.message} ({result.at:%d %b %Y %H:%M} UTC)")


def _xero_webhook_step(pair) -> SetupStep:
    title = "Send Xero's changes to the connector (webhook)"
    received = (
        WebhookEvent.objects.filter(pair=pair, source=WebhookEvent.Source.XERO)
        .exclude(payload__has_key="initial_load")
        .exists()
    )
    result = _result(pair, Step.XERO_INTENT)
    if not pair.xero_webhook_key:
        return SetupStep(
            "xero_webhook",
            title,
            TODO,
            "Add a webhook to your Xero app with the delivery URL below, then paste its webhook key here.",
        )
    verified_at = result.at if result is not None and result.ok else None
    # Intent to receive itself sends one wrongly signed request, which is refused on purpose.
    since = max(
        (t for t in (pair.secrets_set_at, verified_at and verified_at + INTENT_GRACE) if t), default=None
    )
    if (
        pair.xero_rejected_count
        and pair.last_rejected_at
        and (since is None or pair.last_rejected_at > since)
    ):
        rejected = (
            f"Xero's requests were refused {pair.xero_rejected_count} time(s), last at "
            f"{pair.last_rejected_at:%d %b %Y %H:%M} UTC: their signature does not match the key "
            "pasted here. Copy the webhook key from Xero's developer portal again and paste it below."
        )
    else:
        rejected = ""
    if (result is not None and result.ok) or received:
        summary = "Xero's signed requests reach the connector" + (
            f" (intent to receive passed {result.at:%d %b %Y %H:%M} UTC)." if result and result.ok else "."
        )
        return SetupStep("xero_webhook", title, FAILED if rejected else DONE, summary, rejected)
    if result is not None:
        return SetupStep("xero_webhook", title, FAILED, "The key is saved.", result.message)
    if rejected:
        return SetupStep("xero_webhook", title, FAILED, "The key is saved.", rejected)
    return SetupStep(
        "xero_webhook",
        title,
        TODO,
        "The key is saved. In Xero's developer portal press “Send Intent to receive”; this step is done "
        "when the connector has answered it.",
    )


def _backfill_step(pair) -> SetupStep:
    title = "Bring in what Xero already holds (first backfill)"
    url = backfill_url(pair)
    customers = RecordLink.objects.filter(pair=pair, xero_type=RecordLink.XeroType.CONTACT).count()
    invoices = RecordLink.objects.filter(pair=pair, xero_type=RecordLink.XeroType.INVOICE).count()
    links = [("Backfill: dry run first", url)] if url else []
    if customers or invoices:
        return SetupStep(
            "backfill",
            title,
            DONE,
            f"{customers} customer(s) and {invoices} invoice(s) are in sync. New changes in Xero now reach "
            "Pipedrive within seconds.",
            links=links,
        )
    if url:
        summary = (
            "Changes made in Xero from now on are synced. To bring in the customers and invoices Xero "
            "already holds, run a backfill: its dry run first shows what it would create and change."
        )
    else:
        summary = (
            "Changes made in Xero from now on are synced. A backfill of what Xero already holds is not "
            "available in this version yet."
        )
    return SetupStep("backfill", title, TODO, summary, links=links)


# ---------------------------------------------------------------- actions (each safe to repeat)


def create_pair(xero: XeroConnection, pipedrive: PipedriveConnection, name: str = "") -> SyncPair:
    """The pair joining these two connections: created once; asking again returns the same pair."""
    for conn in (xero, pipedrive):
        if conn.status != ConnectionStatus.ACTIVE:
            raise SetupRefused(f"{conn._meta.verbose_name} {conn} is not working: reconnect it first.")
    name = (name or "").strip() or f"{xero} → {pipedrive}"
    existing = SyncPair.objects.filter(xero_connection=xero, pipedrive_connection=pipedrive).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return pairs.create_pair(name[:200], xero, pipedrive)
    except (IntegrityError, ConnectorError):
        # Created at the same moment by another request: that pair is the answer.
        existing = SyncPair.objects.filter(xero_connection=xero, pipedrive_connection=pipedrive).first()
        if existing is None:
            raise
        return existing


def run_pipedrive_setup(pair: SyncPair) -> str:
    """Create the recommended custom fields and the invoice pipeline; the outcome is kept for the page."""
    try:
        created = pipedrive_setup.create_recommended_fields(pair)
        pipeline = pipedrive_setup.create_invoice_pipeline(pair)
    except ConnectorError as exc:
        message = f"Pipedrive refused or failed: {exc}"
        _record(pair, Step.PIPEDRIVE_SETUP, False, message)
        raise ConnectorError(message) from exc
    made = created + pipeline["created"]
    message = (
        f"Created {len(made)} in Pipedrive ({', '.join(made)}); " if made else "Everything already existed; "
    ) + f"{pipeline['mapped']} invoice statuses point at the pipeline's stages."
    _record(pair, Step.PIPEDRIVE_SETUP, True, message)
    return message


def register_webhooks(pair: SyncPair) -> str:
    """Register (or check) the pair's Pipedrive webhooks; the outcome is kept for the page."""
    try:
        report = pipedrive_webhooks.register_pipedrive_webhooks(pair)
    except ConnectorError as exc:
        message = f"Pipedrive webhooks were not registered: {exc}"
        _record(pair, Step.PIPEDRIVE_WEBHOOKS, False, message)
        raise ConnectorError(message) from exc
    _record(pair, Step.PIPEDRIVE_WEBHOOKS, True, str(report))
    return str(report)


def save_xero_webhook_key(pair: SyncPair, key: str) -> None:
    """Store the key pasted from Xero's portal; a new key needs a new intent-to-receive."""
    key = (key or "").strip()
    if not key:
        raise SetupRefused("Paste the webhook key shown in Xero's developer portal.")
    if len(key) < 20 or any(ch.isspace() for ch in key):
        raise SetupRefused(
            "That does not look like a Xero webhook key (a long string without spaces): copy it again."
        )
    with transaction.atomic():
        pairs.set_xero_webhook_key(pair, key)
        SetupStepResult.objects.filter(pair=pair, step=Step.XERO_INTENT).delete()


def note_intent_to_receive(pair_id: int) -> None:
    """Xero's correctly signed empty batch arrived: the webhook and its key work."""
    SetupStepResult.objects.update_or_create(
        pair_id=pair_id,
        step=Step.XERO_INTENT,
        defaults={"ok": True, "message": "Xero's intent to receive was answered.", "at": timezone.now()},
    )


def sandbox_intent_to_receive(pair: SyncPair) -> str:
    """Against the sandbox only: ask its Xero to run intent-to-receive on the pair's webhook (what the
    developer portal's button does with the real Xero), and keep the outcome."""
    base = sandbox_base()
    if not base:
        raise SetupRefused(
            "Only the sandbox can be asked from here: with the real Xero, press “Send Intent to receive” "
            "in the developer portal."
        )
    url = xero_webhook_url(pair)
    timeout = settings.HTTP_TIMEOUT_SECONDS
    headers = sandbox_control_headers()
    try:
        listed = requests.get(
            f"{base}/_webhooks/", params={"service": "xero"}, headers=headers, timeout=timeout
        )
        if listed.status_code in (401, 403):
            message = (
                "The sandbox refused the call: set SANDBOX_CONTROL_TOKEN to the same value for the "
                "web server and the workers (scripts/run.sh does)."
            )
            _record(pair, Step.XERO_INTENT, False, message)
            raise ConnectorError(message)
        listed.raise_for_status()
        hook = next((h for h in listed.json()["subscriptions"] if h["url"] == url), None)
        if hook is None:
            message = (
                "The sandbox's Xero has no webhook for this pair's delivery URL yet: add it (step 1 of the "
                "instructions), paste its key, then try again."
            )
            _record(pair, Step.XERO_INTENT, False, message)
            raise SetupRefused(message)
        answer = requests.post(
            f"{base}/_webhooks/{hook['id']}/intent-to-receive", headers=headers, timeout=timeout * 2
        )
        answer.raise_for_status()
        report = answer.json()
    except (requests.RequestException, ValueError, KeyError) as exc:
        message = f"The sandbox did not answer: {type(exc).__name__}."
        _record(pair, Step.XERO_INTENT, False, message)
        raise ConnectorError(message) from exc
    outcome = "; ".join(
        f"{c['payload']} request: expected {c['expected']}, got {c['status'] or c['error']}"
        for c in report["checks"]
    )
    if report["passed"]:
        message = f"Intent to receive passed ({outcome})."
        _record(pair, Step.XERO_INTENT, True, message)
        return message
    message = (
        f"Intent to receive failed ({outcome}). Usually the key pasted here is not the key of that "
        "webhook: copy it again."
    )
    _record(pair, Step.XERO_INTENT, False, message)
    raise ConnectorError(message)
