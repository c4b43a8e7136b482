"""Settings for the test suite: the real settings, with tasks run inline.

``DATABASE_URL`` and ``REDIS_URL`` still apply, so the same suite runs on SQLite and
the ORM broker, and on PostgreSQL and Redis.
"""

import os
from urllib.parse import urlsplit, urlunsplit

# A fixed key so tests never touch a developer's own key file.
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "8Yx3pZbM0P8Ck8sUiZr2m3qW2b9yUOvRZ0xWgsl0c0Q=")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
# The test client and live servers speak plain HTTP with DEBUG off.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
# Under pytest-xdist each worker (PYTEST_XDIST_WORKER=gw0, gw1...) has a data folder of its own: its SQLite
# test database (pytest-django adds the worker to TEST NAME too), its lock files (connector/locks.py), the
# sandbox's shared clock (sandbox/clock.py), its static root; processes the tests start inherit it. The
# worker's name is appended to whatever folder the environment names: xdist's controller loads these
# settings first and its environment (with the folder it set) is what the workers inherit, so a plain
# default would give every worker the controller's one folder.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_DATA_ROOT = os.environ.get(
    "CONNECTOR_DATA_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test")
)
if _WORKER and os.path.basename(os.path.normpath(_DATA_ROOT)) != _WORKER:
    _DATA_ROOT = os.path.join(_DATA_ROOT, _WORKER)
os.environ["CONNECTOR_DATA_DIR"] = _DATA_ROOT
# And a Redis database of its own (the cache, the rate limits' counters and django-q2's queue would
# otherwise be shared): worker n uses REDIS_URL's database + 8 * n, modulo 16 (docs/testing.md).
_redis = urlsplit(os.environ.get("REDIS_URL", ""))
if _WORKER.removeprefix("gw").isdigit() and _redis.scheme in ("redis", "rediss"):
    _database = int(_redis.path.strip("/") or 0) + 8 * int(_WORKER.removeprefix("gw"))
    os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{_database % 16}"))

from config.settings import *  # noqa: F403, E402 (after the environment above)
from config.settings import DATA_DIR, DATABASES, Q_CLUSTER  # noqa: E402

# django-q2 reads Q_CLUSTER once at import; run tasks inline in tests.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}

# A file, not :memory:, so threads in tests share one database and WAL is real.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

# No waiting for fuller Xero batches in the suite (many tests drain a few events at once, against the
# real minute of 60): tests/connector/intake/test_drain_batching.py turns it on with the settings fixture.
INBOX_BATCH_WAIT_SECONDS = 0.0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

# Login throttling and the second factor are off for the suite (client.login() passes no request,
# which the axes backend needs); tests/security turns each on with the settings fixture.
AXES_ENABLED = False
REQUIRE_2FA = False
# The webhook rate limit too: the whole suite posts from 127.0.0.1, and with Redis the counters outlive
# a test; tests/security/test_webhook_rate_limit.py turns it on.
WEBHOOK_RATE_LIMIT_PER_MINUTE = 0

# The suite runs with the sandbox on (its URLs and admin, as scripts/run.sh has them) and a known
# control token, which the sandbox tests' JSON clients send (tests/sandbox/conftest.py).
SANDBOX_ENABLED = True
SANDBOX_CONTROL_TOKEN = "test-sandbox-control-token"  # noqa: S105 (the suite's own)
