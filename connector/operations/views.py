"""The health page (staff only, through the admin site's login)."""

from django.contrib import admin
from django.template.response import TemplateResponse

from connector.operations.health import health


def health_page(request):
    context = {**admin.site.each_context(request), "title": "Health", "health": health(user=request.user)}
    return TemplateResponse(request, "audit/health.html", context)
