"""Control endpoints for tests and benchmarks in other processes: faults, counters, reset, webhooks.

Every view here is a control or inspection endpoint: ``sandbox.control.control_endpoint`` lets in a
logged-in staff session (with Django's CSRF check) or the ``X-Sandbox-Token`` header, nobody else.
No answer carries a signing key or a password.
"""

import json

from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from sandbox import clock, counters, faults, ratelimit, webhooks
from sandbox.control import control_endpoint
from sandbox.models import Service, WebhookDelivery, WebhookSubscription
from sandbox.pipedrive.models import Company, PanelExtension
from sandbox.pipedrive.services import ensure_demo_company, panels


def _service_or_400(service):
    if service not in Service.values:
        return HttpResponseBadRequest(f"unknown service {service!r}")
    return None


@control_endpoint
@require_http_methods(["GET", "POST"])
def fault_switches(request, service):
    """GET shows the switches; POST {"error_rate": 0.2, ...} sets them."""
    if bad := _service_or_400(service):
        return bad
    if request.method == "POST":
        try:
            faults.set_faults(service, **json.loads(request.body or b"{}"))
        except (ValueError, TypeError) as exc:
            return HttpResponseBadRequest(str(exc))
    switch = faults.get(service)
    return JsonResponse({name: getattr(switch, name) for name in sorted(faults.FIELDS)})


@control_endpoint
@require_http_methods(["GET"])
def call_counters(request, service):
    if bad := _service_or_400(service):
        return bad
    return JsonResponse(counters.snapshot(service, request.GET.get("tenant")))


@control_endpoint
@require_http_methods(["POST"])
def reset(request, service):
    """Forget counters, limit windows and faults of one service (not its records)."""
    if bad := _service_or_400(service):
        return bad
    counters.reset(service)
    ratelimit.reset(service)
    faults.reset(service)
    clock.reset()
    return JsonResponse({"reset": service})


# ---------------------------------------------------------------- webhooks (the developer portal's part)


@control_endpoint
@require_http_methods(["GET", "POST"])
def webhook_subscriptions(request):
    """GET lists the registered webhooks; POST {"client_id", "url", "signing_key"?, "categories"?} adds a
    Xero one (Xero has no API for this: it is the developer portal). The answer says whether it has
    a key (``has_signing_key``), never the key: a caller that needs it sends its own ``signing_key``."""
    if request.method == "POST":
        try:
            data = json.loads(request.body or b"{}")
            subscription = webhooks.register_xero_webhook(
                client_id=str(data["client_id"]),
                url=str(data["url"]),
                signing_key=str(data.get("signing_key", "")),
                categories=str(data.get("categories", "CONTACT,INVOICE")),
            )
        except KeyError as exc:
            return HttpResponseBadRequest(f"missing field {exc}")
        except (ValueError, TypeError) as exc:
            return HttpResponseBadRequest(str(exc))
        return JsonResponse(webhooks.subscription_as_dict(subscription), status=201)
    rows = WebhookSubscription.objects.order_by("pk")
    if service := request.GET.get("service"):
        rows = rows.filter(service=service)
    return JsonResponse({"subscriptions": [webhooks.subscription_as_dict(s) for s in rows]})


@control_endpoint
@require_http_methods(["POST"])
def webhook_intent_to_receive(request, pk):
    """Run Xero's intent-to-receive handshake against the webhook's URL and report."""

    subscription = get_object_or_404(WebhookSubscription, pk=pk, service=Service.XERO)
    return JsonResponse(webhooks.intent_to_receive(subscription))


@control_endpoint
@require_http_methods(["GET"])
def webhook_deliveries(request):
    """The outbox, newest first: ?service=, ?status=, ?limit= (default 100)."""
    rows = WebhookDelivery.objects.order_by("-pk")
    for name in ("service", "status"):
        if value := request.GET.get(name):
            rows = rows.filter(**{name: value})
    try:
        limit = min(1000, int(request.GET.get("limit", 100)))
    except ValueError:
        return HttpResponseBadRequest("limit must be a number")
    return JsonResponse({"deliveries": [webhooks.delivery_as_dict(d) for d in rows[:limit]]})


@control_endpoint
@require_http_methods(["POST"])
def webhook_deliver_now(request):
    """Send what is due now (for scripts that run without a worker)."""
    try:
        limit = int(request.GET.get("limit", 100))
    except ValueError:
        return HttpResponseBadRequest("limit must be a number")
    return JsonResponse({"sent": webhooks.deliver_pending(limit)})


# ---------------------------------------------------------------- JSON panels (Developer Hub)


@control_endpoint
@require_http_methods(["GET", "POST"])
def pipedrive_panels(request):
    """GET lists the registered JSON panels; POST {"name", "endpoint_url", "jwt_secret", "schema"?,
    "company_id"?, "on_organization"?, "on_deal"?} registers one (Pipedrive has no API for this: it is
    Developer Hub). ``company_id`` may be left out when the sandbox has one company (or none: the demo
    company is made). No answer carries the secret."""
    if request.method == "POST":
        try:
            data = json.loads(request.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            companies = Company.objects.all()
            if "company_id" in data:
                company = companies.filter(pk=int(data["company_id"])).first()
            elif not companies.exists():
                company = ensure_demo_company()
            else:
                company = companies.first() if companies.count() == 1 else None
            if company is None:
                return HttpResponseBadRequest("company_id: the id of one sandbox Pipedrive company")
            panel = panels.register_panel(
                company,
                name=str(data.get("name") or ""),
                endpoint_url=str(data.get("endpoint_url") or ""),
                jwt_secret=str(data.get("jwt_secret") or ""),
                schema=data.get("schema") if isinstance(data.get("schema"), dict) else None,
                on_organization=bool(data.get("on_organization", True)),
                on_deal=bool(data.get("on_deal", True)),
            )
        except (ValueError, TypeError) as exc:
            return HttpResponseBadRequest(str(exc))
        return JsonResponse(panels.panel_as_dict(panel), status=201)
    rows = PanelExtension.objects.order_by("pk")
    return JsonResponse({"panels": [panels.panel_as_dict(p) for p in rows]})
