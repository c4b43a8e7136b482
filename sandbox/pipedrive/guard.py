"""The per-call pipeline of every sandbox Pipedrive API call, in one place.

Order: method allowed -> authenticate (x-api-token, api_token query, Bearer) -> fault switches
-> burst limit per token (requests per 2 s; search 10 per 2 s) -> daily token budget per
company (the operation's x-token-cost) -> legacy daily POST/PUT count (API tokens) -> the
view, holding a concurrency slot -> rate-limit headers and counters.
"""

from dataclasses import dataclass

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import clock, counters, faults, ratelimit
from sandbox.pipedrive import costs
from sandbox.pipedrive.models import DAILY_WRITES_PER_USER, SEARCH_BURST_PER_2S, Company, OAuthGrant, User

SERVICE = "pipedrive"
DAY_SECONDS = 24 * 3600


@dataclass
class Caller:
    """Who is calling: the user, their company, and which kind of token they used."""

    user: User
    company: Company
    oauth: bool
    token_scope: str  # the burst limit counts per token

    @property
    def tenant(self) -> str:
        return str(self.company.id)


def error(status: int, message: str, **extra) -> JsonResponse:
    """Pipedrive's error envelope (pipedrive-api.md §3.1)."""
    body = {
        "success": False,
        "error": message,
        "error_info": "Please check developers.pipedrive.com",
        "data": None,
        "additional_data": None,
        **extra,
    }
    return JsonResponse(body, status=status)


def authenticate(request) -> Caller | None:
    token = request.headers.get("x-api-token") or request.GET.get("api_token")
    if token:
        user = User.objects.select_related("company").filter(api_token=token).first()
        if user:
            return Caller(user, user.company, oauth=False, token_scope=f"api-token:{user.id}")
        return None
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer:
        grant = (
            OAuthGrant.objects.select_related("user__company")
            .filter(access_token=bearer, revoked=False, access_expires_at__gt=clock.now())
            .first()
        )
        if grant and not faults.get(SERVICE).revoke_tokens:
            return Caller(grant.user, grant.user.company, oauth=True, token_scope=f"oauth:{grant.id}")
    return None


def _burst_limits(caller: Caller, search: bool) -> list[ratelimit.Limit]:
    limits = [ratelimit.Limit("burst", caller.token_scope, 2, caller.company.burst_limit(caller.oauth))]
    if search:
        limits.append(ratelimit.Limit("search-burst", caller.token_scope, 2, SEARCH_BURST_PER_2S))
    return limits


def _rate_headers(response, limits: list[ratelimit.Limit], outcome: ratelimit.Outcome) -> None:
    # Report the tightest burst window (the search one on search endpoints).
    limit = min(limits, key=lambda lim: outcome.remaining.get(lim.kind, lim.limit))
    response["x-ratelimit-limit"] = str(limit.limit)
    response["x-ratelimit-remaining"] = str(outcome.remaining.get(limit.kind, 0))
    response["x-ratelimit-reset"] = str(outcome.resets_in.get(limit.kind, 2))


def endpoint(version: str, spec_path: str, handlers: dict, search: bool = False):
    """A view for one spec path: ``handlers`` maps HTTP methods to ``fn(request, caller, **kwargs)``."""

    @csrf_exempt
    def view(request, **kwargs):
        method = request.method
        handler = handlers.get(method)
        if handler is None:
            return error(405, f"Method {method} not allowed")
        name = f"{method} /api/{version}{spec_path}"
        caller = authenticate(request)
        if caller is None:
            counters.count_call(SERVICE, "", name, 401)
            return error(401, "unauthorized access", errorCode=401)

        # The call is in flight from here (injected latency included) until it is answered.
        with counters.in_flight(SERVICE, caller.tenant):
            return _guarded(request, caller, name, version, method, spec_path, handler, search, kwargs)

    view.spec = (version, spec_path)
    return view


def _guarded(request, caller, name, version, method, spec_path, handler, search, kwargs):
    """Faults, then the limits (nothing spent by a refused call beyond its burst slot), then the view."""
    switch = faults.get(SERVICE)
    injected = faults.inject(switch, lambda status, message: error(status, message))
    if injected is not None:
        counters.count_call(SERVICE, caller.tenant, name, injected.status_code)
        return injected

    burst = _burst_limits(caller, search)
    outcome = ratelimit.spend(SERVICE, burst, 1)
    if not outcome.allowed:
        return _rejected(caller, name, burst, outcome, "Request over limit", outcome)

    tokens = costs.cost(version, method, spec_path)
    daily = [
        ratelimit.Limit(
            "daily-tokens",
            f"company:{caller.company.id}",
            DAY_SECONDS,
            caller.company.daily_budget,
            rolling=False,
        )
    ]
    budget = ratelimit.spend(SERVICE, daily, tokens)
    if not budget.allowed:
        return _rejected(caller, name, burst, outcome, "Daily API token budget exhausted", budget)

    writes_left = None
    if not caller.oauth and method in ("POST", "PUT"):
        writes = [
            ratelimit.Limit(
                "daily-writes", f"user:{caller.user.id}", DAY_SECONDS, DAILY_WRITES_PER_USER, rolling=False
            )
        ]
        written = ratelimit.spend(SERVICE, writes, 1)
        if not written.allowed:
            return _rejected(caller, name, burst, outcome, "Daily POST/PUT limit reached", written)
        writes_left = written.remaining["daily-writes"]

    response = handler(request, caller, **kwargs)
    _rate_headers(response, burst, outcome)
    if writes_left is not None:
        response["x-daily-requests-left"] = str(writes_left)
    counters.count_call(SERVICE, caller.tenant, name, response.status_code, tokens=tokens)
    return response


def _rejected(caller, name, burst, burst_outcome, message, tripped_outcome) -> JsonResponse:
    response = error(429, message)
    _rate_headers(response, burst, burst_outcome)
    if tripped_outcome is not burst_outcome:
        # Burst headers still show room: that is how clients tell a spent daily budget from a burst.
        response["x-ratelimit-reset"] = str(burst_outcome.resets_in.get("burst", 2))
    counters.count_call(SERVICE, caller.tenant, name, 429)
    counters.count_call(SERVICE, caller.tenant, f"LIMIT {tripped_outcome.tripped.kind}", 429)
    return response


def spent_today(company: Company) -> ratelimit.Outcome:
    """The company's daily token window, spending nothing (for admin pages and tests)."""
    daily = [
        ratelimit.Limit(
            "daily-tokens", f"company:{company.id}", DAY_SECONDS, company.daily_budget, rolling=False
        )
    ]
    return ratelimit.remaining(SERVICE, daily)
