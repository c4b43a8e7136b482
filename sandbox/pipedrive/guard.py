"""The per-call pipeline of every sandbox Pipedrive API call, in one place.

Order: method allowed -> authenticate (x-api-token, api_token query, Bearer) -> fault switches
-> burst limit per token (requests per 2 s; search 10 per 2 s) -> daily token budget per
company (the operation's x-token-cost) -> legacy daily POST/PUT count (API tokens) -> the
view, holding a concurrency slot -> rate-limit headers and counters.
"""

from dataclasses import dataclass

from django.db import transaction
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

        # The call is in flight from here (injected latency included) until it is answered; it is
        # counted as its slot is released (one commit).
        counts: list[tuple[str, int, int]] = []
        with counters.in_flight(SERVICE, caller.tenant, counts=counts):
            return _guarded(
                request, caller, name, version, method, spec_path, handler, search, kwargs, counts
            )

    view.spec = (version, spec_path)
    return view


def _guarded(request, caller, name, version, method, spec_path, handler, search, kwargs, counts):
    """Faults, then the limits (nothing spent by a refused call beyond its burst slot), then the view.

    What the call counts for is appended to ``counts`` (the slot's release records it)."""
    switch = faults.get(SERVICE)
    injected = faults.inject(switch, lambda status, message: error(status, message))
    if injected is not None:
        counts.append((name, injected.status_code, 0))
        return injected

    burst = _burst_limits(caller, search)
    tokens = costs.cost(version, method, spec_path)
    outcome, refusal = _spend_limits(caller, method, burst, tokens)
    if refusal is not None:
        tripped, message = refusal
        counts.append((name, 429, 0))
        counts.append((f"LIMIT {tripped.tripped.kind}", 429, 0))
        return _rejected(burst, outcome, message, tripped)

    response = handler(request, caller, **kwargs)
    _rate_headers(response, burst, outcome)
    if "daily-writes" in outcome.remaining:
        response["x-daily-requests-left"] = str(outcome.remaining["daily-writes"])
    counts.append((name, response.status_code, tokens))
    return response


def _spend_limits(caller, method, burst, tokens):
    """The burst slot, the daily token budget, the legacy daily writes: (burst outcome, None) when all
    passed (the daily writes left added to its ``remaining``), else (burst outcome, (the refused
    outcome, the 429's message)).

    One transaction (one commit): each spend is all or nothing within it, and what passed before a
    refusal stays spent, as when each was its own transaction (a refused call keeps its burst slot)."""
    with transaction.atomic():
        outcome = ratelimit.spend(SERVICE, burst, 1)
        if not outcome.allowed:
            return outcome, (outcome, "Request over limit")
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
            return outcome, (budget, "Daily API token budget exhausted")
        if not caller.oauth and method in ("POST", "PUT"):
            writes = [
                ratelimit.Limit(
                    "daily-writes",
                    f"user:{caller.user.id}",
                    DAY_SECONDS,
                    DAILY_WRITES_PER_USER,
                    rolling=False,
                )
            ]
            written = ratelimit.spend(SERVICE, writes, 1)
            if not written.allowed:
                return outcome, (written, "Daily POST/PUT limit reached")
            outcome.remaining["daily-writes"] = written.remaining["daily-writes"]
    return outcome, None


def _rejected(burst, burst_outcome, message, tripped_outcome) -> JsonResponse:
    response = error(429, message)
    _rate_headers(response, burst, burst_outcome)
    if tripped_outcome is not burst_outcome:
        # Burst headers still show room: that is how clients tell a spent daily budget from a burst.
        response["x-ratelimit-reset"] = str(burst_outcome.resets_in.get("burst", 2))
    return response


def spent_today(company: Company) -> ratelimit.Outcome:
    """The company's daily token window, spending nothing (for admin pages and tests)."""
    daily = [
        ratelimit.Limit(
            "daily-tokens", f"company:{company.id}", DAY_SECONDS, company.daily_budget, rolling=False
        )
    ]
    return ratelimit.remaining(SERVICE, daily)
