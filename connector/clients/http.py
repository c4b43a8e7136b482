"""The base API client: one requests session, timeouts, typed errors, bounded retries.

Never logs tokens or Authorization headers: log lines carry method, path and status only.
"""

import datetime as dt
import logging
import math
import random
import time
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import requests
from django.conf import settings

from connector.errors import (
    AuthExpired,
    BudgetExhausted,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from connector.limits.ratelimit import Limiter, NoLimiter

logger = logging.getLogger(__name__)


class TokenProvider(Protocol):
    def get_token(self) -> str: ...

    def on_unauthorized(self) -> str: ...


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP-date
    (RFC 9110 §10.2.3). A date in the past, a missing, infinite or unreadable value gives 0."""
    value = (value or "").strip()
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            logger.warning("Unreadable Retry-After header %r: not waiting for it", value[:100])
            return 0.0
        if moment.tzinfo is None:  # "-0000" in the date: RFC 5322 says UTC
            moment = moment.replace(tzinfo=dt.UTC)
        seconds = (moment - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else 0.0


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off with full jitter (AWS architecture blog's "full jitter")."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 (jitter, not crypto)


class ApiClient:
    """Subclasses set ``service`` and implement auth headers, limit observation and error messages."""

    service = "api"

    def __init__(
        self, base_url: str, limiter: Limiter | None = None, session: requests.Session | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or NoLimiter()
        self.session = session or requests.Session()
        self.timeout = float(getattr(settings, "HTTP_TIMEOUT_SECONDS", 30))
        self.max_retries = int(getattr(settings, "API_MAX_RETRIES", 4))
        self.max_wait = float(getattr(settings, "API_MAX_LIMIT_WAIT_SECONDS", 60))

    # hooks -----------------------------------------------------------------
    def auth_headers(self) -> dict:
        return {}

    def refresh_auth(self) -> bool:
        """After a 401: get a new token; False when there is nothing to refresh."""
        return False

    def observe(self, response: requests.Response) -> None:
        """Correct the shared limits from the response headers."""

    def rate_limit_wait(self, response: requests.Response) -> float:
        return retry_after_seconds(response.headers.get("Retry-After"))

    def error_message(self, response: requests.Response) -> str:
        return response.text[:500]

    def on_429(self, response: requests.Response) -> None:
        """Raise BudgetExhausted when a daily limit (not a short one) refused the call."""

    # the call --------------------------------------------------------------
    def request(
        self, method: str, path: str, *, params=None, json=None, headers=None, units: int = 1
    ) -> dict | None:
        url = f"{self.base_url}/{path.lstrip('/')}"
        attempt, refreshed = 0, False
        while True:
            try:
                with self.limiter.call(units, timeout=self.timeout):
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        headers={"Accept": "application/json", **(headers or {}), **self.auth_headers()},
                        timeout=self.timeout,
                    )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_retries or not self._may_retry(method, exc):
                    raise ServerError(
                        f"{self.service} {method} {urlsplit(url).path}: {type(exc).__name__}"
                    ) from exc
                self._pause(backoff(attempt), method, url, type(exc).__name__)
                attempt += 1
                continue
            self.observe(response)
            status = response.status_code
            if status == 401 and not refreshed and self.refresh_auth():
                refreshed = True
                continue
            if status == 429:
                self.on_429(response)
                wait = self.rate_limit_wait(response)
                if wait > self.max_wait or attempt >= self.max_retries:
                    raise RateLimited(
                        wait or backoff(attempt), f"{self.service} rate limit: {self.error_message(response)}"
                    )
                self._pause(max(wait, backoff(attempt)), method, url, 429)
                attempt += 1
                continue
            if status >= 500:
                if attempt >= self.max_retries or not self._may_retry(method):
                    raise ServerError(f"{self.service} {status}: {self.error_message(response)}")
                self._pause(backoff(attempt), method, url, status)
                attempt += 1
                continue
            return self._result(response)

    @staticmethod
    def _may_retry(method: str, exc: Exception | None = None) -> bool:
        """A POST may have been applied before the failure: retrying could create a duplicate record.

        It is retried only when it certainly never reached the service (connect timeout); 429s
        are refused before processing and are always retried.
        """
        return method.upper() != "POST" or isinstance(exc, requests.ConnectTimeout)

    def _pause(self, seconds: float, method: str, url: str, why) -> None:
        logger.info(
            "%s %s %s: %s, retrying in %.2f s", self.service, method, urlsplit(url).path, why, seconds
        )
        time.sleep(seconds)

    def _result(self, response: requests.Response):
        status = response.status_code
        if status == 401:
            raise AuthExpired(f"{self.service} refused the credentials (401): {self.error_message(response)}")
        if status == 403:
            raise Forbidden(self.error_message(response))
        if status in (404, 410):
            raise NotFound(f"{self.service} {urlsplit(response.url).path}: not found")
        if status >= 400:
            raise ValidationFailed(self.error_message(response), status)
        if status == 204 or not response.content:
            return None
        return response.json()


__all__ = ["ApiClient", "BudgetExhausted", "TokenProvider", "backoff", "retry_after_seconds"]
