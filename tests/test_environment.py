"""The suite proves which database and broker it ran on, from the environment."""

import os
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django_q.brokers import get_broker

pytestmark = pytest.mark.django_db


def test_database_engine_matches_the_environment():
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            assert "PostgreSQL" in cursor.fetchone()[0]
    else:
        assert connection.vendor == "sqlite"
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] >= 10000


def test_broker_matches_the_environment_and_carries_a_message():
    broker = get_broker(list_key=f"test-{uuid.uuid4().hex}")
    expected = "Redis" if os.environ.get("REDIS_URL") else "ORM"
    assert type(broker).__name__ == expected
    assert broker.ping()
    broker.enqueue("payload-1")
    received = broker.dequeue()
    assert received
    payload = received[0][1]
    assert (payload.decode() if isinstance(payload, bytes) else payload) == "payload-1"
    broker.acknowledge(received[0][0])
    broker.delete_queue()


def test_cache_is_shared_and_matches_the_environment():
    expected = "RedisCache" if os.environ.get("REDIS_URL") else "DatabaseCache"
    from django.core.cache import caches

    assert type(caches["default"]).__name__ == expected
    key = f"test-{uuid.uuid4().hex}"
    cache.set(key, 41)
    assert cache.incr(key) == 42
