"""Webhook receivers (DRF views, thin): one base in the django-anymail style, one subclass per service.

The base runs the same steps for both: find the pair by its URL key (404), refuse oversized
bodies before reading them (413), authenticate on the raw bytes (401, counted, nothing stored),
check the content type (415), decode and validate (400, nothing stored), store through
``connector.intake.inbox`` and answer 200. Answers have an empty body and set no cookie. Before all of that,
a client address over ``WEBHOOK_RATE_LIMIT_PER_MINUTE`` gets 429 with Retry-After
(``connector/intake/throttling.py``).
"""

import json
import logging

from django.conf import settings
from django.http import HttpResponse
from rest_framework.views import APIView

from connector.intake import inbox
from connector.intake.pipedrive_events import InvalidPipedriveBody, parse_pipedrive_body
from connector.intake.throttling import WebhookRateThrottle
from connector.setup import status as setup_status

logger = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _empty(status: int, **headers) -> HttpResponse:
    response = HttpResponse(b"", status=status, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name] = value
    return response


def _reject_duplicate_keys(pairs):
    # Two values for one key could let what was signed differ from what is read.
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in a JSON object")
    return dict(pairs)


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


class WebhookView(APIView):
    """Base receiver: subclasses say how to authenticate, parse and store."""

    source = ""
    http_method_names = ["post"]  # no OPTIONS metadata either
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []  # the body is read raw, never through DRF's parsers
    throttle_classes: list = [WebhookRateThrottle]  # WEBHOOK_RATE_LIMIT_PER_MINUTE per address: 429

    def perform_content_negotiation(self, request, force=False):
        # Senders' Accept headers vary and the answers have no body: never refuse with 406.
        return super().perform_content_negotiation(request, force=True)

    def http_method_not_allowed(self, request, *args, **kwargs):
        return _empty(405)

    def authenticate(self, request, pair: inbox.ReceiverPair, body: bytes) -> bool:
        raise NotImplementedError

    def handle_payload(self, pair: inbox.ReceiverPair, payload) -> None:
        """Validate (raise _Refused(400, …)) and store."""
        raise NotImplementedError

    def unauthorized(self) -> HttpResponse:
        return _empty(401)

    def post(self, request, pair_key: str):
        django_request = request._request
        pair = inbox.find_pair(pair_key, self.source)
        if pair is None:
            return _empty(404)
        try:
            body = self._read_body(django_request)
        except _Refused as refused:
            return _empty(refused.status)
        if not self.authenticate(django_request, pair, body):
            inbox.count_rejection(pair, self.source)  # logs them, once an interval
            response = self.unauthorized()
            # not again by django.request, once per refused request (a private flag the stubs do not declare)
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        try:
            self._check_content_type(django_request)
            payload = self._decode(body)
            self.handle_payload(pair, payload)
        except _Refused as refused:
            logger.info("Refused a %s webhook for pair %s: %s", self.source, pair.pk, refused.reason)
            return _empty(refused.status)
        return _empty(200)

    def _read_body(self, request) -> bytes:
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            declared_length = int(declared)
        except ValueError as exc:
            raise _Refused(400, "bad Content-Length") from exc
        if declared_length > limit:
            raise _Refused(413, "body too large")
        # Read at most one byte past the limit, whatever the header said.
        body = request.read(limit + 1)
        if len(body) > limit:
            raise _Refused(413, "body too large")
        return body

    def _check_content_type(self, request) -> None:
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Refused(415, f"content type {content_type or 'missing'}")

    def _decode(self, body: bytes):
        try:
            payload = json.loads(
                body.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys, parse_constant=_no_constants
            )
            # NUL and lone surrogates are valid JSON escapes but no database stores them as text.
            text = json.dumps(payload, ensure_ascii=False)
            text.encode("utf-8")  # raises on a lone surrogate
            if "\\u0000" in text:  # json.dumps writes NUL as this escape
                raise ValueError("NUL character")
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise _Refused(400, f"not JSON: {type(exc).__name__}") from exc
        return payload


class XeroWebhookView(WebhookView):
    """``POST /webhooks/xero/<pair key>/``: signed batches of ids; an empty batch is intent-to-receive."""

    source = "xero"

    def authenticate(self, request, pair, body):
        return inbox.xero_signature_valid(pair, body, request.headers.get("x-xero-signature"))

    def handle_payload(self, pair, payload):
        try:
            events = inbox.parse_xero_batch(payload)
        except inbox.InvalidBatch as exc:
            raise _Refused(400, str(exc)) from exc
        if not events:  # intent to receive: the key works, which the guided setup shows as done
            setup_status.note_intent_to_receive(pair.pk)
        inbox.store_xero_batch(pair, events)


class PipedriveWebhookView(WebhookView):
    """``POST /webhooks/pipedrive/<pair key>/``: one v1 or v2 event, with HTTP Basic auth."""

    source = "pipedrive"

    def authenticate(self, request, pair, body):
        return inbox.pipedrive_auth_valid(
            pair, request.headers.get("Authorization"), body, request.headers.get("X-Pipedrive-Signature")
        )

    def unauthorized(self):
        return _empty(401, **{"WWW-Authenticate": 'Basic realm="webhooks"'})

    def handle_payload(self, pair, payload):
        try:
            event = parse_pipedrive_body(payload)
        except InvalidPipedriveBody as exc:
            raise _Refused(400, str(exc)) from exc
        inbox.store_pipedrive_event(pair, event, payload)
