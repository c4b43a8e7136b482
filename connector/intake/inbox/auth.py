"""Authenticating webhook requests (in constant time) and counting the ones refused."""

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from connector.intake.inbox.pairs import ReceiverPair
from connector.models import SyncPair, WebhookEvent

logger = logging.getLogger(__name__)

Source = WebhookEvent.Source


def xero_signature_valid(pair: ReceiverPair, body: bytes, signature: str | None) -> bool:
    """``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw body)), compared in constant time."""
    key = pair.xero_webhook_key
    if not key or not signature:
        return False
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def _basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def pipedrive_auth_valid(
    pair: ReceiverPair, authorization: str | None, body: bytes, signature: str | None
) -> bool:
    """HTTP Basic auth (Pipedrive's real mechanism), plus the optional HMAC when a secret is set."""
    credentials = _basic_credentials(authorization)
    if credentials is None or not pair.pipedrive_webhook_password:
        return False
    user, password = credentials
    # Both compared, no short-circuit: the time taken does not tell which one was wrong.
    user_ok = hmac.compare_digest(user, pair.pipedrive_webhook_user.encode())
    password_ok = hmac.compare_digest(password, pair.pipedrive_webhook_password.encode())
    ok = user_ok & password_ok
    secret = pair.pipedrive_signing_secret
    if secret:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        given = (signature or "").strip().lower().encode("utf-8", "replace")
        ok &= hmac.compare_digest(expected, given)
    return ok


def rejection_cache_keys(pair_pk: int, source: str) -> tuple[str, str]:
    base = f"webhook-rejections:{pair_pk}:{source}"
    return base, base + ":written"


def count_rejection(pair: ReceiverPair, source: str) -> None:
    """Count a request refused for its signature or credentials; nothing else of it is stored.

    A flood of bad requests must not write the pair's row and log a line each: refusals add up in
    the shared cache, and the row's counter (with ``last_rejected_at``) and the log get them at most
    once per pair and source every ``WEBHOOK_REJECTION_INTERVAL_SECONDS``. The first refusal of an
    interval is written at once (a wrong key shows on the setup page straight away); those after it
    are written by the next refusal after the interval, or by the minute's sweep
    (``flush_rejections``).
    """
    pending_key, written_key = rejection_cache_keys(pair.pk, source)
    cache.add(pending_key, 0, timeout=None)
    try:
        cache.incr(pending_key)
    except ValueError:  # evicted between the two calls
        cache.set(pending_key, 1, timeout=None)
    if cache.add(written_key, True, timeout=settings.WEBHOOK_REJECTION_INTERVAL_SECONDS):
        _write_rejections(pair.pk, source)


def _write_rejections(pair_pk: int, source: str) -> int:
    pending_key, _ = rejection_cache_keys(pair_pk, source)
    count = cache.get(pending_key) or 0
    if not count:
        return 0
    with contextlib.suppress(ValueError):  # evicted: nothing left to carry over
        cache.decr(pending_key, count)  # refusals counted meanwhile stay for the next write
    counter = "xero_rejected_count" if source == Source.XERO else "pipedrive_rejected_count"
    SyncPair.objects.filter(pk=pair_pk).update(
        **{counter: F(counter) + count, "last_rejected_at": timezone.now()}
    )
    logger.warning(
        "Rejected %d %s webhook request(s) for pair %s: bad or missing signature/credentials "
        "(counted at most every %ss)",
        count,
        source,
        pair_pk,
        settings.WEBHOOK_REJECTION_INTERVAL_SECONDS,
    )
    return count


def flush_rejections() -> int:
    """Write the refusals still waiting in the cache whose pair's interval is over (the sweep, every
    minute); returns how many were written."""
    keys = {
        (pk, source): rejection_cache_keys(pk, source)
        for pk in SyncPair.objects.values_list("pk", flat=True)
        for source in (Source.XERO, Source.PIPEDRIVE)
    }
    held = cache.get_many([key for pair_keys in keys.values() for key in pair_keys])
    written = 0
    for (pk, source), (pending_key, written_key) in keys.items():
        due = held.get(pending_key) and not held.get(written_key)
        if due and cache.add(written_key, True, timeout=settings.WEBHOOK_REJECTION_INTERVAL_SECONDS):
            written += _write_rejections(pk, source)
    return written
