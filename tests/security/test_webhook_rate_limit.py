"""The webhook receivers' per-address rate limit (``WEBHOOK_RATE_LIMIT_PER_MINUTE``): 429 with
Retry-After past the limit, per client address, before anything is looked up or stored."""

import os
import random
import subprocess
import sys

import pytest
from django.urls import reverse

from connector.intake import throttling
from connector.models import WebhookEvent
from tests.connector.webhook_helpers import basic, encode, pipedrive_v2, xero_batch, xero_event, xero_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_of_three(settings, monkeypatch):
    """A limit of 3, at 30 seconds into a clock minute of its own (no counter of another test, even in
    a Redis that outlives them; nothing to clear)."""
    settings.WEBHOOK_RATE_LIMIT_PER_MINUTE = 3
    now = random.randrange(10**6, 10**8) * 60 + 30.0
    monkeypatch.setattr(throttling.WebhookRateThrottle, "timer", staticmethod(lambda: now))
    return settings


def send_xero(client, pair, address, forwarded=None, resource="c-1"):
    body = xero_batch(xero_event(resource))
    extra = {"REMOTE_ADDR": address}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    url = reverse("webhooks:xero", args=[pair.key])
    return client.post(url, data=body, content_type="application/json", headers=xero_headers(body), **extra)


def test_the_fourth_request_from_one_address_gets_429_and_another_address_is_served(
    client, pair, limit_of_three
):
    answers = [send_xero(client, pair, "203.0.113.5", resource=f"c-{n}").status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = send_xero(client, pair, "203.0.113.5", resource="c-refused")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"  # the rest of the minute
    assert not WebhookEvent.objects.filter(resource_id="c-refused").exists()  # nothing stored

    assert send_xero(client, pair, "198.51.100.8", resource="c-other").status_code == 200
    assert WebhookEvent.objects.filter(resource_id="c-other").exists()


def test_the_limit_covers_pipedrive_and_refused_requests_too(client, pair, limit_of_three):
    url = reverse("webhooks:pipedrive", args=[pair.key])
    body = encode(pipedrive_v2())
    answers = [
        client.post(
            url,
            data=body,
            content_type="application/json",
            headers=basic(password="wrong"),
            REMOTE_ADDR="192.0.2.9",
        ).status_code
        for _ in range(5)
    ]
    assert answers == [401, 401, 401, 429, 429]


def test_without_a_proxy_rotating_x_forwarded_for_does_not_reset_the_count(client, pair, limit_of_three):
    answers = [
        send_xero(client, pair, "203.0.113.5", forwarded=f"10.9.9.{n}", resource=f"c-{n}").status_code
        for n in range(4)
    ]
    assert answers == [200, 200, 200, 429]


def test_behind_a_proxy_each_forwarded_client_has_its_own_count(client, pair, limit_of_three):
    limit_of_three.PROXY_COUNT = 1
    proxy = "10.0.0.2"
    first = [send_xero(client, pair, proxy, "203.0.113.5", resource=f"a-{n}").status_code for n in range(4)]
    assert first == [200, 200, 200, 429]
    # The client cannot pick its address: what it wrote (left) is not what the proxy appended.
    assert send_xero(client, pair, proxy, "1.1.1.1, 203.0.113.5").status_code == 429
    assert send_xero(client, pair, proxy, "198.51.100.8", resource="b-1").status_code == 200


def test_intent_to_receive_is_answered_under_the_default_limit(client, pair, settings):
    """Xero's intent-to-receive: an empty signed batch, then a wrongly signed one; never throttled."""
    settings.WEBHOOK_RATE_LIMIT_PER_MINUTE = 3000
    url = reverse("webhooks:xero", args=[pair.key])
    body = xero_batch()
    good = client.post(url, data=body, content_type="application/json", headers=xero_headers(body))
    signature = xero_headers(body)["x-xero-signature"]
    wrong = {"x-xero-signature": ("B" if signature[0] == "A" else "A") + signature[1:]}
    bad = client.post(url, data=body, content_type="application/json", headers=wrong)
    assert (good.status_code, bad.status_code) == (200, 401)


def test_zero_turns_the_limit_off(client, pair, settings):
    settings.WEBHOOK_RATE_LIMIT_PER_MINUTE = 0
    assert {send_xero(client, pair, "203.0.113.5", resource=f"c-{n}").status_code for n in range(10)} == {200}


def test_the_default_allows_fifty_a_second_per_address():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.WEBHOOK_RATE_LIMIT_PER_MINUTE)"
    )
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_RATE_LIMIT_PER_MINUTE"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) == 3000  # 50/s: the benchmarks send about 20/s


def test_a_cache_that_cannot_be_reached_lets_webhooks_through(client, pair, limit_of_three, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(throttling.caches["throttle"], "add", down)
    assert {send_xero(client, pair, "203.0.113.5", resource=f"c-{n}").status_code for n in range(5)} == {200}
