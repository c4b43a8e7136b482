"""Control endpoints for tests and benchmarks in other processes: faults, counters, reset."""

import json

from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import clock, counters, faults, ratelimit
from sandbox.models import Service


def _service_or_400(service):
    if service not in Service.values:
        return HttpResponseBadRequest(f"unknown service {service!r}")
    return None


@csrf_exempt
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


@require_http_methods(["GET"])
def call_counters(request, service):
    if bad := _service_or_400(service):
        return bad
    return JsonResponse(counters.snapshot(service, request.GET.get("tenant")))


@csrf_exempt
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
