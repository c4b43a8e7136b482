"""The webhook receivers, one shared contract (django-anymail style) run against Xero and Pipedrive,
plus what is particular to each: intent to receive, redeliveries, tenants, v1/v2 bodies."""

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.urls import reverse

from connector.intake import inbox
from connector.intake.inbox.auth import rejection_cache_keys
from connector.models import SyncPair, WebhookEvent
from tests.connector.webhook_helpers import (
    COMPANY,
    PD_SIGNING_SECRET,
    TENANT,
    XERO_KEY,
    basic,
    encode,
    pipedrive_v1,
    pipedrive_v2,
    xero_batch,
    xero_event,
    xero_headers,
)

pytestmark = pytest.mark.django_db


def assert_plain(response, status):
    """Every answer: the status, an empty body, no cookie."""
    assert response.status_code == status, response.content
    assert response.content == b""
    assert "Set-Cookie" not in response.headers and not response.cookies


class WebhookReceiverContract:
    """What every receiver must do; a subclass says how to build bodies and authenticate."""

    url_name = ""
    rejected_counter = ""

    def valid_body(self) -> bytes:
        raise NotImplementedError

    def auth(self, body: bytes) -> dict:
        raise NotImplementedError

    def bad_auth(self, body: bytes) -> dict:
        raise NotImplementedError

    def malformed_bodies(self) -> list[bytes]:
        """Valid JSON of the wrong shape, beyond the shared non-JSON cases."""
        raise NotImplementedError

    def post(self, client, pair, body, headers, content_type="application/json", key=None):
        url = reverse(self.url_name, args=[key or pair.key])
        # Passed in the environ too: the test client drops the content type of an empty body.
        extra = {"CONTENT_TYPE": content_type} if content_type else {}
        return client.post(url, data=body, content_type=content_type, headers=headers, **extra)

    # --- the cases

    def test_valid_request_is_stored_and_answered_with_an_empty_200(self, client, pair):
        body = self.valid_body()
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        rows = WebhookEvent.objects.filter(pair=pair)
        assert rows.count() >= 1
        assert {row.status for row in rows} == {"pending"}

    def test_bad_credentials_get_401_store_nothing_and_are_counted(self, client, pair):
        body = self.valid_body()
        for _ in range(2):
            assert_plain(self.post(client, pair, body, self.bad_auth(body)), 401)
        assert WebhookEvent.objects.count() == 0
        pair.refresh_from_db()
        # The first refusal is written at once, the next one when the interval is over.
        assert getattr(pair, self.rejected_counter) == 1 and pair.last_rejected_at is not None
        source = self.rejected_counter.split("_")[0]
        cache.delete(rejection_cache_keys(pair.pk, source)[1])  # the interval ends
        inbox.flush_rejections()
        pair.refresh_from_db()
        assert getattr(pair, self.rejected_counter) == 2

    def test_missing_credentials_get_401(self, client, pair):
        assert_plain(self.post(client, pair, self.valid_body(), {}), 401)
        assert WebhookEvent.objects.count() == 0
        pair.refresh_from_db()
        assert getattr(pair, self.rejected_counter) == 1

    def test_a_replayed_body_adds_no_rows(self, client, pair):
        body = self.valid_body()
        for _ in range(3):
            assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        first = list(WebhookEvent.objects.values_list("id", flat=True))
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        assert list(WebhookEvent.objects.values_list("id", flat=True)) == first

    def test_malformed_bodies_get_400_and_store_nothing(self, client, pair):
        shared = [
            b"",
            b"not json",
            b"{",
            b"\xff\xfe",
            b'{"a": NaN}',
            b"[" * 5000 + b"]" * 5000,
            b'{"a":1,"a":2}',
        ]
        for body in shared + self.malformed_bodies():
            response = self.post(client, pair, body, self.auth(body))
            assert_plain(response, 400)
        assert WebhookEvent.objects.count() == 0

    def test_nul_and_lone_surrogates_are_refused(self, client, pair):
        for body in (
            self.valid_body().replace(b"Acme", b"\\u0000"),
            self.valid_body().replace(b"X", b"\\ud800"),
        ):
            if body == self.valid_body():
                continue
            assert_plain(self.post(client, pair, body, self.auth(body)), 400)
        assert WebhookEvent.objects.count() == 0

    def test_wrong_content_type_gets_415(self, client, pair):
        body = self.valid_body()
        for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
            assert_plain(self.post(client, pair, body, self.auth(body), content_type=content_type), 415)
        assert WebhookEvent.objects.count() == 0

    def test_a_huge_body_gets_413_before_anything_else(self, client, pair, settings):
        settings.WEBHOOK_MAX_BODY_BYTES = 1000
        body = self.valid_body()[:-1] + b" " * 1000 + b"}"
        assert_plain(self.post(client, pair, body, self.auth(body)), 413)
        assert WebhookEvent.objects.count() == 0

    def test_the_default_limit_is_one_mebibyte(self, client, pair):
        body = b" " * (1024 * 1024 + 1)
        assert_plain(self.post(client, pair, body, self.auth(body)), 413)

    def test_unknown_or_disabled_pair_gets_404(self, client, pair):
        body = self.valid_body()
        assert_plain(self.post(client, pair, body, self.auth(body), key="no-such-pair"), 404)
        SyncPair.objects.filter(pk=pair.pk).update(enabled=False)
        assert_plain(self.post(client, pair, body, self.auth(body)), 404)
        assert WebhookEvent.objects.count() == 0

    def test_only_post_is_allowed(self, client, pair):
        for method in (client.get, client.put, client.delete, client.options):
            response = method(reverse(self.url_name, args=[pair.key]))
            assert_plain(response, 405)
            assert response["Allow"] == "POST"

    def test_any_accept_header_is_fine(self, client, pair):
        body = self.valid_body()
        headers = {**self.auth(body), "Accept": "application/xml"}
        assert_plain(self.post(client, pair, body, headers), 200)


class TestXeroReceiver(WebhookReceiverContract):
    url_name = "webhooks:xero"
    rejected_counter = "xero_rejected_count"

    def valid_body(self):
        return xero_batch(xero_event("c-1"), xero_event("i-1", category="INVOICE", event_type="CREATE"))

    def auth(self, body):
        return xero_headers(body)

    def bad_auth(self, body):
        good = xero_headers(body)["x-xero-signature"]
        return {"x-xero-signature": ("B" if good[0] == "A" else "A") + good[1:]}

    def malformed_bodies(self):
        event = xero_event("c-1")
        return [
            encode([]),
            encode({"events": "x"}),
            encode({"events": [1]}),
            encode({"events": [{**event, "eventDateUtc": "yesterday"}]}),
            encode({"events": [{**event, "resourceId": 5}]}),
            encode({"events": [{**event, "resourceId": "x" * 65}]}),
            encode({"events": [{k: v for k, v in event.items() if k != "tenantId"}]}),
            encode({"events": [event], "firstEventSequence": "1"}),
            # One bad event rejects the whole batch.
            encode({"events": [event, {**event, "eventCategory": None}]}),
            encode({"events": [{**event, "eventDateUtc": "9999-12-31T23:59:59-01:00"}]}),
        ]

    def test_events_are_stored_with_their_fields(self, client, pair):
        body = self.valid_body()
        self.post(client, pair, body, self.auth(body))
        contact = WebhookEvent.objects.get(category="CONTACT")
        assert (contact.source, contact.tenant_id, contact.resource_id, contact.event_type) == (
            "xero",
            TENANT,
            "c-1",
            "UPDATE",
        )
        assert contact.event_time == dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
        assert contact.payload["resourceUrl"].endswith("/Contacts/c-1")

    def test_intent_to_receive_batch_gets_200_and_stores_nothing(self, client, pair):
        body = b'{"events":[],"firstEventSequence": 0,"lastEventSequence": 0, "entropy": "ABCDEFGHIJ"}'
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        assert WebhookEvent.objects.count() == 0

    def test_a_pair_without_a_webhook_key_accepts_nothing(self, client, pair):
        pair.xero_webhook_key = ""
        pair.save()
        body = self.valid_body()
        assert_plain(self.post(client, pair, body, self.auth(body)), 401)

    def test_other_tenants_and_unknown_categories_are_recorded_as_ignored(self, client, pair):
        body = xero_batch(
            xero_event("c-9", tenant="someone-else"),
            xero_event("item-1", category="ITEM"),
            xero_event("c-1"),
        )
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        statuses = dict(WebhookEvent.objects.values_list("resource_id", "status"))
        assert statuses == {"c-9": "ignored", "item-1": "ignored", "c-1": "pending"}
        reasons = dict(WebhookEvent.objects.values_list("resource_id", "reason"))
        assert "not joined" in reasons["c-9"] and "ITEM" in reasons["item-1"]

    def test_the_resource_url_is_never_fetched(self, client, pair):
        # No HTTP mock is active: following resourceUrl would raise a connection error (500).
        event = {**xero_event("c-1"), "resourceUrl": "http://169.254.169.254/latest/meta-data/"}
        body = xero_batch(event)
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        assert WebhookEvent.objects.get().resource_id == "c-1"

    def test_the_same_batch_three_times_gives_one_row_per_event(self, client, pair):
        events = [xero_event(f"c-{n}") for n in range(4)] + [xero_event("i-1", category="INVOICE")]
        body = xero_batch(*events)
        for _ in range(3):
            assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        assert WebhookEvent.objects.count() == 5
        # Re-signed with new entropy and sequence numbers (a new delivery of the same events): still 5.
        again = json.loads(body)
        again.update(entropy="OTHER", firstEventSequence=9, lastEventSequence=13)
        body = encode(again)
        assert_plain(self.post(client, pair, body, self.auth(body)), 200)
        assert WebhookEvent.objects.count() == 5


class TestPipedriveReceiver(WebhookReceiverContract):
    url_name = "webhooks:pipedrive"
    rejected_counter = "pipedrive_rejected_count"

    def valid_body(self):
        return encode(pipedrive_v2("organization", "change", 42, data={"id": 42, "name": "Acme X"}))

    def auth(self, body):
        return basic()

    def bad_auth(self, body):
        return basic(password="wrong-password")

    def malformed_bodies(self):
        good = pipedrive_v2()
        return [
            encode([]),
            encode({"meta": "x"}),
            encode({**good, "meta": {**good["meta"], "action": "explode"}}),
            encode({**good, "meta": {**good["meta"], "entity_id": None}}),
            encode({**good, "meta": {**good["meta"], "entity_id": True}}),
            encode({**good, "meta": {**good["meta"], "timestamp": "soon"}}),
            encode({**good, "meta": {**good["meta"], "company_id": {"id": 1}}}),
            encode({**good, "data": "text"}),
            encode({**pipedrive_v1(), "event": "updated"}),
            encode({**pipedrive_v1(), "event": "exploded.deal"}),
        ]

    def test_wrong_user_or_scheme_is_refused(self, client, pair):
        body = self.valid_body()
        for headers in (
            basic(user="someone"),
            {"Authorization": "Bearer abc"},
            {"Authorization": "Basic !!!"},
            {"Authorization": "Basic " + "bm9jb2xvbg=="},  # "nocolon"
        ):
            assert_plain(self.post(client, pair, body, headers), 401)
        assert WebhookEvent.objects.count() == 0

    def test_the_optional_signature_is_required_once_a_secret_is_set(self, client, pair):
        import hashlib
        import hmac

        pair.pipedrive_signing_secret = PD_SIGNING_SECRET
        pair.save()
        body = self.valid_body()
        assert_plain(self.post(client, pair, body, basic()), 401)
        wrong = {**basic(), "X-Pipedrive-Signature": "0" * 64}
        assert_plain(self.post(client, pair, body, wrong), 401)
        signature = hmac.new(PD_SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert_plain(self.post(client, pair, body, {**basic(), "X-Pipedrive-Signature": signature}), 200)
        assert WebhookEvent.objects.count() == 1

    def test_v1_and_v2_bodies_become_the_same_kind_of_row(self, client, pair):
        for payload in (pipedrive_v2("deal", "delete", 5), pipedrive_v1("deal", "deleted", 6)):
            body = encode(payload)
            assert_plain(self.post(client, pair, body, basic()), 200)
        rows = {row.resource_id: row for row in WebhookEvent.objects.all()}
        assert {(r.source, r.category, r.event_type, r.tenant_id) for r in rows.values()} == {
            ("pipedrive", "deal", "delete", str(COMPANY))
        }
        assert rows["5"].payload["meta"]["version"] == "2.0" and rows["6"].payload["event"] == "deleted.deal"

    def test_other_companies_and_entities_are_acknowledged_and_ignored(self, client, pair):
        other = pipedrive_v2("organization", "delete", 8)
        other["meta"]["company_id"] = "999"
        for payload in (other, pipedrive_v2("activity", "create", 9)):
            assert_plain(self.post(client, pair, encode(payload), basic()), 200)
        assert set(WebhookEvent.objects.values_list("resource_id", "status")) == {
            ("8", "ignored"),
            ("9", "ignored"),
        }


def test_the_xero_key_is_never_logged(client, pair, caplog):
    body = xero_batch(xero_event("c-1"))
    client.post(
        reverse("webhooks:xero", args=[pair.key]), data=body, content_type="application/json", headers={}
    )
    assert XERO_KEY not in caplog.text
