"""A per-address rate limit for the webhook receivers (``WEBHOOK_RATE_LIMIT_PER_MINUTE``; 0: off).

A DRF throttle: a request over the limit is answered 429 with ``Retry-After`` (the seconds left in
the minute) before the pair is looked up, the body read or a signature checked. The count is one
counter per client address and clock minute in the ``throttle`` cache (config/env.py cache_config):
Redis when configured, shared by every web server process; else each process's memory (no database
write per request; each process then counts on its own). Two small operations a request, where DRF's
``SimpleRateThrottle`` would rewrite the whole list of the minute's request times. The address is
the connection's, or with ``BEHIND_PROXY`` the one the proxy appended to X-Forwarded-For
(``config.client_ip``): rotating the header gains nothing.

Xero batches its events (one request carries many) and sends intent-to-receive as a few requests;
Pipedrive sends one request an event. A cache that cannot be reached lets the request through: the
limit guards against floods, it must not turn a cache outage into lost webhooks.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from config.client_ip import client_ip

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class WebhookRateThrottle(BaseThrottle):
    """At most ``WEBHOOK_RATE_LIMIT_PER_MINUTE`` requests per client address and clock minute."""

    timer = staticmethod(time.time)  # a clock the tests can set

    def __init__(self) -> None:
        self._wait: float | None = None

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"

    def allow_request(self, request, view) -> bool:
        limit = settings.WEBHOOK_RATE_LIMIT_PER_MINUTE
        if limit <= 0:
            return True
        now = self.timer()
        window = int(now // WINDOW_SECONDS)
        key = f"webhook-rate:{self.get_ident(request)}:{window}"
        cache = caches["throttle"]
        try:
            # add() starts the minute's counter (a no-op when it exists); incr() counts this request.
            cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            count = 1
            try:
                cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
            except Exception:
                logger.warning("Webhook rate limit: the cache could not be written", exc_info=True)
        except Exception:
            logger.warning("Webhook rate limit not applied: the cache could not be reached", exc_info=True)
            return True
        if count <= limit:
            return True
        self._wait = max(1.0, (window + 1) * WINDOW_SECONDS - now)
        return False

    def wait(self) -> float | None:
        return self._wait
