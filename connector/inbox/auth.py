"""Authenticating webhook requests (in constant time) and counting the ones refused."""

import base64
import binascii
import hashlib
import hmac
import logging

from django.db.models import F
from django.utils import timezone

from connector.inbox.pairs import ReceiverPair
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


def count_rejection(pair: ReceiverPair, source: str) -> None:
    """Count a request refused for its signature or credentials; nothing else of it is stored."""
    counter = "xero_rejected_count" if source == Source.XERO else "pipedrive_rejected_count"
    SyncPair.objects.filter(pk=pair.pk).update(
        **{counter: F(counter) + 1, "last_rejected_at": timezone.now()}
    )
    logger.warning("Rejected a %s webhook for pair %s: bad or missing signature/credentials", source, pair.pk)
