"""Control endpoints for tests and benchmarks in other processes: faults, counters, reset, webhooks.

Every view here is a control or inspection endpoint: ``sandbox.control.control_endpoint`` lets in a
logged-in staff session (with Django's CSRF check) or the ``X-Sandbox-Token`` header, nobody else.
No answer carries a signing key or a password.
"""

import datetime as dt
import json
import zoneinfo

from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_http_methods

from connector.connections.timezones import iana_name
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
    clock.reset_local()  # the clock moved with POST /sandbox/_clock stays: {"reset": true} there
    return JsonResponse({"reset": service})


# ---------------------------------------------------------------- the clock


CLOCK_FIELDS = {"date", "datetime", "timezone", "reset"}


def _moment_asked(data: dict) -> dt.datetime:
    """The time a POST /sandbox/_clock body asks for (``ValueError`` with the reason otherwise)."""
    unknown = set(data) - CLOCK_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}: send date, datetime or reset")
    if ("date" in data) == ("datetime" in data):
        raise ValueError('send one of "date" (2026-12-10), "datetime" (2026-12-10T07:00:00+13:00) or "reset"')
    if "datetime" in data:
        if "timezone" in data:
            raise ValueError('"timezone" goes with "date": a datetime carries its own UTC offset')
        moment = parse_datetime(str(data["datetime"])) if isinstance(data["datetime"], str) else None
        if moment is None:
            raise ValueError(f"datetime {data['datetime']!r} is not an ISO 8601 date and time")
        if moment.tzinfo is None:
            raise ValueError("datetime needs a UTC offset (Z or +13:00)")
        return moment
    try:
        day = parse_date(data["date"]) if isinstance(data["date"], str) else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"date {data['date']!r} is not a date (YYYY-MM-DD)")
    name = data.get("timezone", "UTC")
    iana = iana_name(name) if isinstance(name, str) else ""
    if not iana:
        raise ValueError(f"timezone {name!r} is not a time zone (an IANA name or Xero's Timezone)")
    # Noon of that day: the same date in every zone within 12 hours of the one named.
    return dt.datetime.combine(day, dt.time(12), tzinfo=zoneinfo.ZoneInfo(iana))


@control_endpoint
@require_http_methods(["GET", "POST"])
def sandbox_clock(request):
    """GET answers the sandbox's time; POST moves it for every process of the sandbox:
    ``{"date": "2026-12-10"}`` (noon that day, in ``"timezone"``: UTC unless named),
    ``{"datetime": "2026-12-10T07:00:00+13:00"}``, or ``{"reset": true}`` (back to real time).
    The clock only moves forward; a refused move changes nothing (400 with the reason)."""
    if request.method == "POST":
        try:
            data = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return refuse_clock("the body must be JSON")
        if not isinstance(data, dict) or not data:
            return refuse_clock('send {"date": "YYYY-MM-DD"}, {"datetime": "..."} or {"reset": true}')
        if "reset" in data:
            if data["reset"] is not True or len(data) > 1:
                return refuse_clock('"reset" is sent alone, as {"reset": true}')
            clock.reset()
        else:
            try:
                clock.move_to(_moment_asked(data))
            except ValueError as exc:  # clock.ClockError too
                return refuse_clock(str(exc))
    return JsonResponse(clock.state())


def refuse_clock(message: str) -> JsonResponse:
    return JsonResponse({"error": "sandbox clock not moved", "detail": message}, status=400)


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
