"""The panel endpoint Pipedrive calls (GET, signed query): thin, over auth.py and services.py."""

import logging

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector.panel import auth, services

logger = logging.getLogger(__name__)


def refusal(refused: auth.PanelRefused) -> JsonResponse:
    """Pipedrive's panel error shape: a non-success status with ``{"error": {"title", "subtitle"}}``."""
    return JsonResponse(
        {"error": {"title": refused.title, "subtitle": refused.detail}}, status=refused.status
    )


@never_cache
@require_GET
def panel(request, key: str):
    try:
        pair = auth.find_pair(key)
        verified = auth.verify(pair, request.GET)
    except auth.PanelRefused as refused:
        # Why, never the token: the log line must not carry anything a caller could replay.
        logger.info("panel request refused (%s): %s", refused.status, refused.detail)
        return refusal(refused)
    data = services.panel_data(verified.pair, verified.resource, verified.record_id)
    return JsonResponse(data)
