"""Browsable pages: what the sandbox services hold and do, for a person watching a demo."""

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from sandbox import counters, faults
from sandbox.models import Service, WebhookDelivery, WebhookSubscription

# Which sub-app holds each service's records (their admins are registered by the emulators).
RECORD_APPS = {Service.XERO: "sandbox_xero", Service.PIPEDRIVE: "sandbox_pipedrive"}


def record_links(service: str) -> list[dict]:
    """Admin list pages of the emulator's records; a model without an admin is skipped, not an error."""
    try:
        app_config = apps.get_app_config(RECORD_APPS[service])
    except LookupError:
        return []
    links = []
    for model in app_config.get_models():
        if not admin.site.is_registered(model):
            continue
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        links.append(
            {"name": model._meta.verbose_name_plural.capitalize(), "url": url, "count": _count(model)}
        )
    return links


def _count(model) -> int | None:
    try:
        with transaction.atomic():  # a savepoint, so a failed count leaves PostgreSQL's transaction usable
            return model._default_manager.count()
    except Exception:  # an emulator table not migrated yet must not break the page
        return None


def service_summary(service: str) -> dict:
    switch = faults.get(service)
    active_faults = {
        name: getattr(switch, name)
        for name in sorted(faults.FIELDS)
        if getattr(switch, name) and name != "timeout_seconds"
    }
    return {
        "service": service,
        "label": Service(service).label,
        "counters": counters.snapshot(service),
        "faults": active_faults,
        "records": record_links(service),
        "subscriptions": WebhookSubscription.objects.filter(service=service).order_by("pk"),
        "deliveries": WebhookDelivery.objects.filter(service=service).order_by("-pk")[:15],
    }


@staff_member_required
def overview(request):
    """/sandbox/: per service, its records, API usage, faults switched on and recent webhooks."""
    return render(
        request,
        "sandbox/overview.html",
        {
            **admin.site.each_context(request),  # site header, user links, nav sidebar
            "services": [service_summary(s) for s in Service.values],
            "title": "Sandbox",
        },
    )
