"""Who may use the sandbox's control and inspection endpoints (``/sandbox/_webhooks/…``,
``/sandbox/<service>/_faults``, ``_counters``, ``_reset``).

Two kinds of caller, nobody else:

- a **staff member logged in to the admin** (``admin.site.has_permission``: active, staff, and the
  second factor when ``REQUIRE_2FA``), whose unsafe requests pass Django's CSRF check (the
  ``csrftoken`` cookie's value in the ``X-CSRFToken`` header or the ``csrfmiddlewaretoken`` field);
- a **script or another process** that sends the header ``X-Sandbox-Token`` equal to the setting
  ``SANDBOX_CONTROL_TOKEN`` (compared in constant time). An empty setting turns token access off.

Everyone else gets a JSON 401 (no credentials) or 403 (wrong token, not staff, failed CSRF check)
and the view does not run. The emulated Xero and Pipedrive APIs keep their own OAuth / API-token
auth and are not guarded here.
"""

from __future__ import annotations

import hmac
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

TOKEN_HEADER = "X-Sandbox-Token"  # noqa: S105 (a header name)


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering the reason instead of a page."""

    def _reject(self, request, reason):
        return reason


def _csrf_failure(request) -> str | None:
    check = _CsrfCheck(lambda _request: None)  # type: ignore[arg-type, return-value]
    check.process_request(request)  # reads the CSRF cookie
    return check.process_view(request, None, (), {})  # type: ignore[arg-type, return-value]


def refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": "sandbox control refused", "detail": message}, status=status)


def token_matches(given: str) -> bool:
    expected = getattr(settings, "SANDBOX_CONTROL_TOKEN", "") or ""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def refusal(request) -> JsonResponse | None:
    """None when the caller may use a control endpoint, else the answer that refuses it."""
    given = request.headers.get(TOKEN_HEADER, "")
    if given:
        if token_matches(given):
            return None
        return refuse(403, f"Wrong {TOKEN_HEADER} (or token access is off: SANDBOX_CONTROL_TOKEN is empty).")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return refuse(
            401,
            f"Log in to the admin as a staff member, or send the {TOKEN_HEADER} header "
            "(the SANDBOX_CONTROL_TOKEN setting).",
        )
    if not admin.site.has_permission(request):
        return refuse(403, "Only staff members (with their second factor, when required) may do this.")
    if reason := _csrf_failure(request):
        return refuse(403, f"CSRF check failed: {reason}. Send the csrftoken cookie's value as X-CSRFToken.")
    return None


def control_endpoint(view):
    """Guard a control or inspection view (see the module docstring).

    The view is marked ``csrf_exempt`` only so that the middleware leaves the decision here: a
    token caller has no CSRF cookie, while a session caller is checked above with Django's own
    CSRF check, so no session request skips it.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if answer := refusal(request):
            return answer
        return view(request, *args, **kwargs)

    guarded.csrf_exempt = True  # type: ignore[attr-defined]
    guarded.sandbox_control = True  # type: ignore[attr-defined]
    return guarded
