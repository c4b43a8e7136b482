"""Turn the process environment into Django settings.

Plain functions over a mapping (usually ``os.environ``) so each rule can be tested
without reloading the settings module. Every default needs nothing running:
SQLite under the data folder and django-q2's ORM broker.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

# SQLite is shared by the web server, the workers and the sandbox: WAL lets readers
# run beside one writer, the busy timeout waits instead of failing with "database is
# locked", and IMMEDIATE takes the write lock at BEGIN so two writers never deadlock
# while upgrading a read lock.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=30000",
}

KEY_HELP = (
    "Generate one with:\n"
    "  python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'\n"
    "and set FIELD_ENCRYPTION_KEY to it. Keep it safe: without it the stored Xero and "
    "Pipedrive credentials cannot be read. To rotate, put the new key first and keep "
    "the old one after it, comma-separated."
)


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a yes/no setting; anything unrecognised is an error, not a silent default."""
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a yes/no value (use 1/0, true/false, on/off).")


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from exc


def env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from exc
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw!r} must be between {low:g} and {high:g}.")
    return value


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_config(env: Mapping[str, str], data_dir: Path) -> dict:
    """``DATABASE_URL`` (PostgreSQL via psycopg 3) or the embedded SQLite file."""
    url = env.get("DATABASE_URL", "").strip()
    if url:
        try:
            config = dj_database_url.parse(url, conn_max_age=env_int(env, "DATABASE_CONN_MAX_AGE", 60))
        except ValueError as exc:
            raise ImproperlyConfigured(f"DATABASE_URL could not be read: {exc}") from exc
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
        elif config["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                f"DATABASE_URL names {config['ENGINE']}; ml-connector supports PostgreSQL "
                "(postgres://user@host:5432/name) or SQLite (sqlite:////path/to/file)."
            )
        else:
            config["CONN_HEALTH_CHECKS"] = True
        return dict(config)  # a plain dict, like the SQLite branch (parse() types it as a TypedDict)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(data_dir / "connector.sqlite3"),
        "OPTIONS": dict(SQLITE_OPTIONS),
        # Kept open across requests, as for a DATABASE_URL: opening the file and running the
        # PRAGMAs on every request cost the webhook receiver about a third of its throughput
        # (bench/webhook_intake.py). 0 closes after each request.
        "CONN_MAX_AGE": env_int(env, "DATABASE_CONN_MAX_AGE", 60),
    }


def redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {url!r}.")
    return url or None


def q_cluster_config(env: Mapping[str, str]) -> dict:
    """django-q2 settings: the ORM broker by default, Redis when ``REDIS_URL`` is set.

    ``timeout`` stays below ``retry`` so a running task is never handed to a second
    worker; failures are acknowledged after a few attempts rather than redelivered
    forever. The connector's own tables (inbox, audit) remain the record of what is
    unfinished, and a periodic sweep re-enqueues anything a lost message left behind.
    """
    timeout = env_int(env, "Q_TIMEOUT", 300)
    retry = env_int(env, "Q_RETRY", timeout + 60)
    if timeout >= retry:
        raise ImproperlyConfigured(f"Q_TIMEOUT ({timeout}s) must be lower than Q_RETRY ({retry}s).")
    config = {
        "name": env.get("Q_CLUSTER_NAME", "ml-connector"),
        "workers": env_int(env, "Q_WORKERS", 2),
        "recycle": 500,
        "timeout": timeout,
        "retry": retry,
        "max_attempts": env_int(env, "Q_MAX_ATTEMPTS", 3),
        "ack_failures": True,
        "save_limit": env_int(env, "Q_SAVE_LIMIT", 5000),
        "catch_up": False,
        "label": "Task queue",
        "sync": False,
    }
    url = redis_url(env)
    if url:
        config["redis"] = url
    else:
        config["orm"] = "default"
        # Seconds the ORM broker's pusher sleeps when the queue is empty: the wait between a webhook
        # stored and its drain starting is up to this. django-q2's default (0.2) and our former 0.5
        # were most of the connector's latency (bench/latency.py); an idle poll is one SELECT of the
        # queue table, which holds only the tasks waiting for a worker.
        config["poll"] = env_float(env, "Q_POLL", 0.05, 0.01, 10)
    return config


def inbox_drain_seconds(env: Mapping[str, str], task_timeout: int) -> int:
    """How long one inbox drain claims work: a fifth of the task timeout by default, and always
    below it (a drain the timeout kills leaves its claimed rows to wait out their lease)."""
    seconds = env_int(env, "INBOX_DRAIN_SECONDS", max(1, task_timeout // 5))
    if seconds >= task_timeout:
        raise ImproperlyConfigured(
            f"INBOX_DRAIN_SECONDS ({seconds}s) must be well below Q_TIMEOUT ({task_timeout}s)."
        )
    return seconds


def cache_config(env: Mapping[str, str]) -> dict:
    """A cache every process shares: Redis when configured, else a database table.

    ``throttle`` holds the webhook rate limit's counters (connector/intake/throttling.py): Redis too when
    configured (one atomic INCR a request), else each process's memory, so the limit adds no
    database write to every webhook request; each web server process then counts on its own.
    """
    url = redis_url(env)
    if url:
        redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        return {"default": redis, "throttle": {**redis, "KEY_PREFIX": "throttle"}}
    return {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "connector_cache"},
        "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
    }


def _read_or_create_secret(path: Path, make) -> str:
    """Return the secret kept in ``path``, creating it (mode 600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: when two processes start at once, one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def field_encryption_keys(env: Mapping[str, str], debug: bool, data_dir: Path) -> list[str]:
    """The Fernet keys for encrypted fields: first encrypts, all decrypt.

    In development (``DEBUG`` on) a missing key is generated once into the data
    folder and reused, so credentials stay readable across restarts. With DEBUG off a
    missing key stops start-up: a generated key would silently lock the books away.
    """
    keys = env_list(env, "FIELD_ENCRYPTION_KEY", [])
    if not keys:
        if not debug:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is not set and DEBUG is off.\n" + KEY_HELP)
        keys = [
            _read_or_create_secret(data_dir / "field-encryption.key", lambda: Fernet.generate_key().decode())
        ]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY entry {position} is not a valid Fernet key ({exc}).\n" + KEY_HELP
            ) from exc
    return keys


def secret_key(env: Mapping[str, str], debug: bool, data_dir: Path) -> str:
    key = env.get("SECRET_KEY", "").strip()
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Generate one with:\n"
            "  python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return _read_or_create_secret(data_dir / "secret-key", lambda: secrets.token_urlsafe(50))


def https_settings(env: Mapping[str, str], debug: bool) -> dict:
    """HTTPS, HSTS, cookies and sessions: strict with DEBUG off, each one loosened only by its variable.

    ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are trusted only with ``BEHIND_PROXY`` on: without a
    proxy that sets them (and overwrites what clients send), anyone could claim a request came over
    HTTPS, or from any address (dodging the login lockout and the webhook rate limit).
    """
    secure_cookies = env_bool(env, "SECURE_COOKIES", not debug)
    hsts_seconds = env_int(env, "SECURE_HSTS_SECONDS", 0 if debug else 31536000)
    if hsts_seconds < 0:
        raise ImproperlyConfigured(f"SECURE_HSTS_SECONDS={hsts_seconds} must not be negative.")
    preload = env_bool(env, "SECURE_HSTS_PRELOAD", False)
    behind_proxy = env_bool(env, "BEHIND_PROXY", False)
    session_age = env_int(env, "SESSION_COOKIE_AGE", 12 * 3600)
    if session_age <= 0:
        raise ImproperlyConfigured(f"SESSION_COOKIE_AGE={session_age} must be a positive number of seconds.")
    return {
        "SESSION_COOKIE_SECURE": secure_cookies,
        "CSRF_COOKIE_SECURE": secure_cookies,
        "SECURE_SSL_REDIRECT": env_bool(env, "SECURE_SSL_REDIRECT", not debug),
        "SECURE_HSTS_SECONDS": hsts_seconds,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": env_bool(env, "SECURE_HSTS_INCLUDE_SUBDOMAINS", hsts_seconds > 0),
        "SECURE_HSTS_PRELOAD": preload,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https") if behind_proxy else None,
        # Proxies in front of the app that append the client's address to X-Forwarded-For: the
        # client is then that many entries from the right (config/client_ip.py, DRF's NUM_PROXIES).
        # Without a proxy the header is ignored: a client could write any address into it.
        "PROXY_COUNT": 1 if behind_proxy else 0,
        "SESSION_COOKIE_AGE": session_age,
        # Preloading is the domain owner's commitment (hstspreload.org), not a default: the deploy
        # check's reminder about it is silenced while it is off.
        "SILENCED_SYSTEM_CHECKS": [] if preload else ["security.W021"],
    }


def secure_data_dir(data_dir: Path, sqlite_name: str | None = None) -> None:
    """The data folder (SQLite file, generated keys, sandbox credentials) for this user only: the
    folder 0700, its files 0600. An SQLite file not made yet is created empty at 0600 (SQLite keeps
    its -wal and -shm files at the database file's mode). A folder this user does not own (a mounted
    volume) is left as it is."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        data_dir.chmod(0o700)
        for entry in data_dir.iterdir():
            if entry.is_file() and not entry.is_symlink():
                entry.chmod(0o600)
        if sqlite_name:
            database = data_dir / sqlite_name
            if not database.exists():
                os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    except PermissionError:
        pass
