"""The one pipeline every sandbox Xero API call goes through.

bearer token → tenant header → concurrency (per tenant) → fault switches → minute, day
and app-minute windows → the handler → call counters, with Xero's rate-limit headers on
every response and 429 + Retry-After + X-Rate-Limit-Problem when a limit trips.
"""

import datetime as dt
import functools
import json
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import clock, counters, faults, ratelimit
from sandbox.xero import identity
from sandbox.xero.models import Connection, Grant, IdempotentWrite, Organisation, XeroApp

SERVICE = "xero"
# X-Rate-Limit-Problem values as Xero sends them, by our window kind.
PROBLEMS = {"minute": "minute", "day": "day", "app-minute": "appminute"}
# Scopes that open each resource: broad (accounting.transactions) and granular (2026) forms; a
# ".read" scope opens GETs only.
RESOURCE_SCOPES = {
    "Contacts": ("accounting.contacts",),
    "Invoices": ("accounting.transactions", "accounting.invoices"),
    "Payments": ("accounting.transactions", "accounting.payments"),
    "CreditNotes": ("accounting.transactions", "accounting.invoices"),
    "Organisation": ("accounting.settings",),
}


def scope_allows(scope: str, endpoint: str) -> bool:
    """Whether a consent's scope opens ``endpoint`` ("GET /Invoices/{id}"); identity calls need none."""
    method, _, route = endpoint.partition(" ")
    resource = route.strip("/").split("/")[0]
    if resource not in RESOURCE_SCOPES:
        return True
    granted = set(scope.split())
    wanted = {*RESOURCE_SCOPES[resource]}
    if method == "GET":
        wanted |= {f"{name}.read" for name in RESOURCE_SCOPES[resource]}
    return bool(granted & wanted)


@dataclass
class CallContext:
    grant: Grant
    app: XeroApp
    organisation: Organisation | None


def problem(status: int, title: str, detail: str) -> JsonResponse:
    """Xero's problem shape for 401/403/404/429/5xx answers."""
    return JsonResponse(
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": str(uuid.uuid4()),
            "Extensions": {},
        },
        status=status,
    )


def error_response(status: int, message: str) -> HttpResponse:
    titles = {
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
    return problem(status, titles.get(status, "Error"), message)


def limits_for(app: XeroApp, tenant_id: str) -> list[ratelimit.Limit]:
    scope = f"{app.client_id}:{tenant_id}"  # Xero counts per connection: app and organisation
    return [
        ratelimit.Limit("minute", scope, 60, app.minute_limit),
        ratelimit.Limit("day", scope, 86400, app.day_limit),
        ratelimit.Limit("app-minute", app.client_id, 60, app.app_minute_limit),
    ]


def _limit_headers(response: HttpResponse, outcome: ratelimit.Outcome) -> HttpResponse:
    for header, kind in (
        ("X-DayLimit-Remaining", "day"),
        ("X-MinLimit-Remaining", "minute"),
        ("X-AppMinLimit-Remaining", "app-minute"),
    ):
        if kind in outcome.remaining:
            response[header] = str(outcome.remaining[kind])
    return response


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def xero_call(endpoint: str, needs_tenant: bool = True):
    """Decorate a view ``view(request, ctx, **kwargs)`` with the whole call pipeline.

    ``endpoint`` names the route for the counters, e.g. ``"GET /Contacts"``.
    """

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, **kwargs):
            tenant_header = request.headers.get("xero-tenant-id", "").strip()
            grant = identity.grant_for_access_token(_bearer(request))
            switch = faults.get(SERVICE)  # read once per call
            if not grant or switch.revoke_tokens:
                counters.count_call(SERVICE, tenant_header[:64], endpoint, 401)
                return _unauthorized(_bearer(request))
            if not scope_allows(grant.scope, endpoint):
                # Xero's answer to a token lacking the scope (Xero-NetStandard #298).
                counters.count_call(SERVICE, tenant_header[:64], endpoint, 401)
                return problem(401, "Unauthorized", "AuthorizationUnsuccessful")
            organisation = None
            if needs_tenant:
                organisation = _connected_organisation(grant, tenant_header)
                if not organisation:
                    counters.count_call(SERVICE, tenant_header[:64], endpoint, 403)
                    return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            tenant = str(organisation.tenant_id) if organisation else ""
            ctx = CallContext(grant=grant, app=grant.app, organisation=organisation)
            return _limited(request, ctx, tenant, switch, view, kwargs, endpoint)

        return wrapper

    return decorate


def _unauthorized(token: str) -> HttpResponse:
    """401: TokenExpired for an access token past its 30 minutes, as Xero says it; else unsuccessful."""
    expired = identity.expired_access_token(token)
    if expired is None:
        return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
    at = expired.expires_at.astimezone(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
    response = problem(401, "Unauthorized", f"TokenExpired: token expired at {at}")
    response["WWW-Authenticate"] = (
        'Bearer error="invalid_token", error_description="The access token has expired"'
    )
    return response


def _connected_organisation(grant: Grant, tenant_id: str) -> Organisation | None:
    try:
        tenant = uuid.UUID(tenant_id)
    except ValueError:
        return None
    connection = (
        Connection.objects.select_related("organisation")
        .filter(grant=grant, organisation__tenant_id=tenant, deleted_at__isnull=True)
        .first()
    )
    return connection.organisation if connection else None


def _limited(request, ctx: CallContext, tenant: str, switch, view, kwargs, endpoint: str) -> HttpResponse:
    limits = (
        limits_for(ctx.app, tenant)
        if tenant
        else [ratelimit.Limit("app-minute", ctx.app.client_id, 60, ctx.app.app_minute_limit)]
    )
    # Faults run inside the concurrency slot: a slow (latency, timeout) call is a call in flight. The
    # call is counted as its slot is released (one commit for both).
    counts: list[tuple[str, int, int]] = []
    limit = ctx.app.concurrent_limit if tenant else None
    with counters.in_flight(SERVICE, tenant, limit, counts=counts) as taken:
        response = _answer(request, ctx, switch, view, kwargs, limits, taken)
        counts.append((endpoint, response.status_code, 0))
    return response


def _answer(request, ctx: CallContext, switch, view, kwargs, limits, taken: bool) -> HttpResponse:
    """The answer to a call that holds (``taken``) or was refused a concurrency slot."""
    if not taken:
        response = error_response(429, "Too many concurrent requests")
        response["Retry-After"] = "1"
        response["X-Rate-Limit-Problem"] = "concurrent"
        return _limit_headers(response, ratelimit.remaining(SERVICE, limits))
    injected = faults.inject(switch, error_response)
    if injected is not None:
        if injected.status_code == 429:
            injected["X-Rate-Limit-Problem"] = "minute"
        return _limit_headers(injected, ratelimit.remaining(SERVICE, limits))
    outcome = ratelimit.spend(SERVICE, limits)
    if not outcome.allowed:
        response = error_response(429, "Rate limit exceeded")
        response["Retry-After"] = str(outcome.retry_after)
        response["X-Rate-Limit-Problem"] = PROBLEMS[outcome.tripped.kind]
        return _limit_headers(response, outcome)
    return _limit_headers(_idempotent(request, ctx, view, kwargs), outcome)


def _idempotent(request, ctx: CallContext, view, kwargs) -> HttpResponse:
    """Writes with an ``Idempotency-Key`` (≤128 characters) answer a retry with the first answer."""
    key = request.headers.get("Idempotency-Key", "")
    if request.method not in ("PUT", "POST") or not key or not ctx.organisation:
        return view(request, ctx, **kwargs)
    if len(key) > 128:
        return JsonResponse(
            {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "Idempotency-Key is limited to 128 characters",
            },
            status=400,
        )
    keys = {"client_id": ctx.app.client_id, "tenant_id": ctx.organisation.tenant_id, "key": key}
    if earlier := IdempotentWrite.objects.filter(**keys).first():
        return HttpResponse(earlier.body, status=earlier.status, content_type="application/json")
    response = view(request, ctx, **kwargs)
    if response.status_code < 500:
        try:
            with transaction.atomic():
                IdempotentWrite.objects.create(
                    **keys,
                    endpoint=f"{request.method} {request.path}",
                    status=response.status_code,
                    body=response.content.decode(),
                    created_at=clock.now(),
                )
        except IntegrityError:  # a concurrent retry stored it first; both answers stand
            pass
    return response


def json_body(request):
    """The request's JSON body, or None when it is not JSON or holds text no database stores (a NUL
    character or a lone surrogate: valid JSON escapes that PostgreSQL refuses)."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if _storable(body) else None


def _storable(value) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True
