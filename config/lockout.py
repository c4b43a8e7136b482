"""The page django-axes shows instead of the login once a username + address is locked out."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone


def lockout_response(request, original_response=None, credentials=None):
    """429 with the admin's look: why, until when (each refused try during the lock restarts it),
    and how an administrator lifts it."""
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = int(cool_off.total_seconds() // 60)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        **admin.site.each_context(request),
        "title": "Login locked",
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": minutes,
        "retry_at": timezone.localtime(timezone.now() + cool_off),
    }
    return TemplateResponse(request, "admin/locked_out.html", context, status=429).render()
