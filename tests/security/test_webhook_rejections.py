"""A flood of refused webhook requests (wrong signature, wrong password) writes the pair's counter
and logs at most once per interval, and the count is still right once the interval is over."""

import logging

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connector import tasks
from connector.intake.inbox.auth import rejection_cache_keys
from connector.models import WebhookEvent
from tests.connector.webhook_helpers import basic, encode, pipedrive_v2, xero_batch, xero_event, xero_headers

pytestmark = pytest.mark.django_db

TRIES = 60


def _bad_xero(client, pair):
    body = xero_batch(xero_event("c-1"))
    good = xero_headers(body)["x-xero-signature"]
    headers = {"x-xero-signature": ("B" if good[0] == "A" else "A") + good[1:]}
    url = reverse("webhooks:xero", args=[pair.key])
    return client.post(url, data=body, content_type="application/json", headers=headers)


def _bad_pipedrive(client, pair):
    url = reverse("webhooks:pipedrive", args=[pair.key])
    return client.post(
        url, data=encode(pipedrive_v2()), content_type="application/json", headers=basic(password="wrong")
    )


def _counter_writes(queries) -> int:
    return sum(1 for q in queries if q["sql"].startswith("UPDATE") and "connector_syncpair" in q["sql"])


@pytest.mark.parametrize(
    ("send", "source", "counter"),
    [(_bad_xero, "xero", "xero_rejected_count"), (_bad_pipedrive, "pipedrive", "pipedrive_rejected_count")],
)
def test_sixty_refusals_write_the_counter_once_and_log_once(client, pair, caplog, send, source, counter):
    caplog.set_level(logging.INFO)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(TRIES):
            assert send(client, pair).status_code == 401
    assert _counter_writes(queries.captured_queries) <= 2
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) <= 2, [r.getMessage() for r in refusals]
    assert WebhookEvent.objects.count() == 0
    pair.refresh_from_db()
    assert getattr(pair, counter) >= 1 and pair.last_rejected_at is not None

    # The interval is over: the minute's sweep writes what was held back, in one line.
    cache.delete(rejection_cache_keys(pair.pk, source)[1])
    caplog.clear()
    tasks.sweep_inbox()
    pair.refresh_from_db()
    assert getattr(pair, counter) == TRIES
    assert [r.getMessage() for r in caplog.records if "Rejected" in r.getMessage()] == [
        f"Rejected {TRIES - 1} {source} webhook request(s) for pair {pair.pk}: bad or missing "
        "signature/credentials (counted at most every 60s)"
    ]
    tasks.sweep_inbox()  # nothing more to write
    pair.refresh_from_db()
    assert getattr(pair, counter) == TRIES


def test_a_refusal_after_the_interval_writes_what_was_held_back(client, pair):
    for _ in range(3):
        _bad_xero(client, pair)
    cache.delete(rejection_cache_keys(pair.pk, "xero")[1])
    _bad_xero(client, pair)
    pair.refresh_from_db()
    assert pair.xero_rejected_count == 4
