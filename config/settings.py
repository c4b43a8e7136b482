"""Settings for ml-connector, read from the environment (see README, "Configuration").

Defaults need nothing running: SQLite in ``var/`` and django-q2's ORM broker.
``DATABASE_URL`` and ``REDIS_URL`` scale it out without a code change.
"""

import os
from datetime import timedelta
from pathlib import Path

from config import env as envparse

ENV = os.environ
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(ENV.get("CONNECTOR_DATA_DIR", BASE_DIR / "var"))
envparse.secure_data_dir(DATA_DIR)  # 0700, its files 0600 (the SQLite file too, below)

DEBUG = envparse.env_bool(ENV, "DJANGO_DEBUG", False)
SECRET_KEY = envparse.secret_key(ENV, DEBUG, DATA_DIR)
ALLOWED_HOSTS = envparse.env_list(ENV, "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envparse.env_list(ENV, "CSRF_TRUSTED_ORIGINS", [])
# The address people and webhooks reach this installation at; used to print redirect
# and webhook URLs for the Xero and Pipedrive app settings.
PUBLIC_BASE_URL = ENV.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# The emulators of Xero and Pipedrive: on for the run command and demos, off by
# default in production.
SANDBOX_ENABLED = envparse.env_bool(ENV, "SANDBOX_ENABLED", DEBUG)

INSTALLED_APPS = [
    "config.apps.ConnectorAdminConfig",  # django.contrib.admin with the grouped site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",  # login throttling and lockout (AXES_* below)
    "rest_framework",
    "django_q",
    "connector",
    "mapping",
    "audit",
    "sandbox",
    "sandbox.xero",
    "sandbox.pipedrive",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": envparse.database_config(ENV, DATA_DIR)}
if Path(DATABASES["default"]["NAME"]).parent == DATA_DIR:
    envparse.secure_data_dir(DATA_DIR, Path(DATABASES["default"]["NAME"]).name)
CACHES = envparse.cache_config(ENV)
REDIS_URL = envparse.redis_url(ENV)
Q_CLUSTER = envparse.q_cluster_config(ENV)

# django-encrypted-model-fields builds its cipher from this at import time.
FIELD_ENCRYPTION_KEY = envparse.field_encryption_keys(ENV, DEBUG, DATA_DIR)

# Logins: django-axes counts failed logins per username + IP address and, after AXES_FAILURE_LIMIT,
# refuses that pair (even the right password) for AXES_COOLOFF_MINUTES; `manage.py axes_reset`
# (or axes_reset_username NAME) lifts a lockout at once. The axes backend only checks; the
# model backend logs in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envparse.env_bool(ENV, "AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envparse.env_int(ENV, "AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envparse.env_int(ENV, "AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"  # templates/admin/locked_out.html
# The address counted is the connection's (REMOTE_ADDR); with BEHIND_PROXY=1 the one the proxy
# appended to X-Forwarded-For (config/client_ip.py; PROXY_COUNT below). Never what a client wrote.
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
# A second factor (TOTP, django-otp) for the admin: on by default in production, off with
# DJANGO_DEBUG. A staff user without an authenticator app is taken to the enrolment page after
# the password (config/two_factor.py); with one, the login form asks for its code.
REQUIRE_2FA = envparse.env_bool(ENV, "REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = ENV.get("OTP_TOTP_ISSUER", "ml-connector")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = ENV.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # The only API views are webhook receivers, which authenticate by signature.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

# HTTPS (config/env.py https_settings): with DEBUG off, plain HTTP is redirected, HSTS is sent for a
# year, cookies are secure; X-Forwarded-Proto is trusted only with BEHIND_PROXY=1. Sessions last 12 h.
_HTTPS = envparse.https_settings(ENV, DEBUG)
SESSION_COOKIE_SECURE = _HTTPS["SESSION_COOKIE_SECURE"]
CSRF_COOKIE_SECURE = _HTTPS["CSRF_COOKIE_SECURE"]
SECURE_SSL_REDIRECT = _HTTPS["SECURE_SSL_REDIRECT"]
SECURE_HSTS_SECONDS = _HTTPS["SECURE_HSTS_SECONDS"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
SECURE_HSTS_PRELOAD = _HTTPS["SECURE_HSTS_PRELOAD"]
SECURE_PROXY_SSL_HEADER = _HTTPS["SECURE_PROXY_SSL_HEADER"]
SESSION_COOKIE_AGE = _HTTPS["SESSION_COOKIE_AGE"]
SILENCED_SYSTEM_CHECKS = _HTTPS["SILENCED_SYSTEM_CHECKS"]
# Trusted proxies appending to X-Forwarded-For: 1 with BEHIND_PROXY, else 0 (the header is ignored).
# The login lockout and the webhook rate limit read the client's address through config/client_ip.py.
PROXY_COUNT = _HTTPS["PROXY_COUNT"]
REST_FRAMEWORK["NUM_PROXIES"] = PROXY_COUNT  # DRF's own throttles: the same rule (None would trust it)

# External addresses: the real services by default; the sandbox or a test points
# them elsewhere with configuration only.
XERO_IDENTITY_URL = ENV.get("XERO_IDENTITY_URL", "https://identity.xero.com").rstrip("/")
XERO_AUTHORIZE_URL = ENV.get("XERO_AUTHORIZE_URL", "https://login.xero.com/identity/connect/authorize")
XERO_CONNECTIONS_URL = ENV.get("XERO_CONNECTIONS_URL", "https://api.xero.com/connections")
XERO_API_URL = ENV.get("XERO_API_URL", "https://api.xero.com/api.xro/2.0").rstrip("/")
XERO_SCOPES = ENV.get(
    "XERO_SCOPES",
    "offline_access accounting.contacts.read accounting.invoices.read accounting.payments.read"
    " accounting.settings.read",
)
PIPEDRIVE_API_URL = ENV.get("PIPEDRIVE_API_URL", "https://api.pipedrive.com").rstrip("/")
PIPEDRIVE_OAUTH_URL = ENV.get("PIPEDRIVE_OAUTH_URL", "https://oauth.pipedrive.com").rstrip("/")
HTTP_TIMEOUT_SECONDS = float(ENV.get("HTTP_TIMEOUT_SECONDS", "30"))
# Default OAuth app credentials for the admin's "Connect" forms (blank: typed into the form).
XERO_CLIENT_ID = ENV.get("XERO_CLIENT_ID", "")
XERO_CLIENT_SECRET = ENV.get("XERO_CLIENT_SECRET", "")
PIPEDRIVE_CLIENT_ID = ENV.get("PIPEDRIVE_CLIENT_ID", "")
PIPEDRIVE_CLIENT_SECRET = ENV.get("PIPEDRIVE_CLIENT_SECRET", "")
# API limits (connector/limits/ratelimit.py). Xero's defaults: the standard tier; set lower for smaller ones.
API_MAX_RETRIES = envparse.env_int(ENV, "API_MAX_RETRIES", 4)
API_MAX_LIMIT_WAIT_SECONDS = float(ENV.get("API_MAX_LIMIT_WAIT_SECONDS", "60"))  # longer: defer, not sleep
XERO_CONCURRENT_LIMIT = envparse.env_int(ENV, "XERO_CONCURRENT_LIMIT", 5)
XERO_MINUTE_LIMIT = envparse.env_int(ENV, "XERO_MINUTE_LIMIT", 60)
XERO_DAY_LIMIT = envparse.env_int(ENV, "XERO_DAY_LIMIT", 5000)
# Pipedrive: calls per token per 2 s (Lite API token); daily tokens = 30,000 x plan multiplier x
# seats; a reserve of tokens kept for urgent work (below it, backfill waits for the reset).
PIPEDRIVE_BURST_LIMIT = envparse.env_int(ENV, "PIPEDRIVE_BURST_LIMIT", 20)
PIPEDRIVE_DAILY_TOKENS = envparse.env_int(ENV, "PIPEDRIVE_DAILY_TOKENS", 30000)
PIPEDRIVE_BUDGET_RESERVE = envparse.env_int(ENV, "PIPEDRIVE_BUDGET_RESERVE", 1000)
# The local index of Pipedrive organizations/persons (matching without search calls): re-listed
# (records updated since) when older than this; listed in full every PIPEDRIVE_INDEX_FULL_DAYS.
PIPEDRIVE_INDEX_MAX_AGE_HOURS = envparse.env_int(ENV, "PIPEDRIVE_INDEX_MAX_AGE_HOURS", 24)
PIPEDRIVE_INDEX_FULL_DAYS = envparse.env_int(ENV, "PIPEDRIVE_INDEX_FULL_DAYS", 7)

# Webhook intake (connector/intake/receivers.py, connector/intake/inbox/, connector/intake/drain.py).
WEBHOOK_MAX_BODY_BYTES = envparse.env_int(ENV, "WEBHOOK_MAX_BODY_BYTES", 1024 * 1024)  # larger: 413
# Refused webhook requests (bad signature or credentials) are written to the pair's counter and logged
# at most once per pair and source in this many seconds (connector/intake/inbox/auth.py count_rejection).
WEBHOOK_REJECTION_INTERVAL_SECONDS = envparse.env_int(ENV, "WEBHOOK_REJECTION_INTERVAL_SECONDS", 60)
# Requests a minute one client address may make to the webhook receivers before getting 429 with
# Retry-After (connector/intake/throttling.py; counted in the cache); 0 turns the limit off. Xero and
# Pipedrive each send from a few addresses, Pipedrive one request an event: the default (50 a
# second per address) is well above a bulk edit's burst and stops only a flood.
WEBHOOK_RATE_LIMIT_PER_MINUTE = envparse.env_int(ENV, "WEBHOOK_RATE_LIMIT_PER_MINUTE", 3000)
# The sweep re-enqueues a drain for rows pending longer than this (a lost broker message).
INBOX_SWEEP_AFTER_SECONDS = envparse.env_int(ENV, "INBOX_SWEEP_AFTER_SECONDS", 120)
# A row left "processing" this long belongs to a dead worker: the task timeout by default.
INBOX_CLAIM_LEASE_SECONDS = envparse.env_int(ENV, "INBOX_CLAIM_LEASE_SECONDS", Q_CLUSTER["timeout"])
# Rows claimed per round of a drain (a drain keeps claiming until nothing is pending).
INBOX_CLAIM_BATCH = envparse.env_int(ENV, "INBOX_CLAIM_BATCH", 500)
# When the Xero minute is short of room for reading events as they arrive, a drain waits at most this
# long for a fuller batch (up to 100 ids a call) before it claims (connector/intake/drain.py).
INBOX_BATCH_WAIT_SECONDS = float(ENV.get("INBOX_BATCH_WAIT_SECONDS", "2"))
# How long one drain claims work: well inside the task timeout (which would kill it and leave its
# claimed rows to wait out their lease); what is left then goes to a new drain.
INBOX_DRAIN_SECONDS = envparse.inbox_drain_seconds(ENV, Q_CLUSTER["timeout"])
# Failed tries of an event whose sync fails transiently (5xx, time-outs) before it is marked failed.
INBOX_MAX_ATTEMPTS = envparse.env_int(ENV, "INBOX_MAX_ATTEMPTS", 5)
# An event whose worker was lost this many times (a record that crashes or hangs its worker) is
# given up (failed, with why) instead of being claimed again forever; before that, it is tried after the
# other work, with fewer and fewer others (connector/intake/drain.py: SUSPECT_AFTER_LOST).
INBOX_MAX_LOST_CLAIMS = envparse.env_int(ENV, "INBOX_MAX_LOST_CLAIMS", 5)
# The wait before the first retry of such an event; it doubles at each further try (30 minutes at most).
INBOX_RETRY_DELAY_SECONDS = envparse.env_int(ENV, "INBOX_RETRY_DELAY_SECONDS", 60)

# Backfill (connector/operations/backfill.py): Xero records per page; records between saves of the position;
# how long one task carries a run before queueing its continuation (below the task timeout, which
# would kill it and leave the run to wait out its lease); the silence after which a run's worker
# counts as dead and the upkeep schedule hands the run on; Xero calls a day kept for live changes;
# how long a chunk waits for the pair's inbox to empty.
BACKFILL_PAGE_SIZE = envparse.env_int(ENV, "BACKFILL_PAGE_SIZE", 1000)
BACKFILL_CHUNK = envparse.env_int(ENV, "BACKFILL_CHUNK", 25)
BACKFILL_SLICE_SECONDS = envparse.env_int(
    ENV, "BACKFILL_SLICE_SECONDS", min(240, Q_CLUSTER["timeout"] * 4 // 5)
)
BACKFILL_LEASE_SECONDS = envparse.env_int(ENV, "BACKFILL_LEASE_SECONDS", 120)
BACKFILL_XERO_DAY_RESERVE = envparse.env_int(ENV, "BACKFILL_XERO_DAY_RESERVE", 100)
BACKFILL_MAX_YIELD_SECONDS = envparse.env_int(ENV, "BACKFILL_MAX_YIELD_SECONDS", 30)

# Audit (audit/): field values of sync records are kept "full", "masked" (names, e-mails and other
# text shown as "A••• L••"; amounts, dates and ids kept) or "none" (field names only).
AUDIT_PERSONAL_DATA = ENV.get("AUDIT_PERSONAL_DATA", "masked").strip().lower()
if AUDIT_PERSONAL_DATA not in ("full", "masked", "none"):
    raise ValueError(f"AUDIT_PERSONAL_DATA must be full, masked or none, not {AUDIT_PERSONAL_DATA!r}")
# Retention (a daily schedule): successful sync records, failed/deferred ones, done inbox events.
AUDIT_KEEP_DAYS = envparse.env_int(ENV, "AUDIT_KEEP_DAYS", 90)
AUDIT_KEEP_FAILED_DAYS = envparse.env_int(ENV, "AUDIT_KEEP_FAILED_DAYS", 365)
INBOX_KEEP_DAYS = envparse.env_int(ENV, "INBOX_KEEP_DAYS", 30)
# Alerts (one e-mail per incident): recipients, else ADMINS; failures per hour per pair that open one.
ADMINS = [("Admin", address) for address in envparse.env_list(ENV, "ADMIN_EMAILS", [])]
ALERT_EMAILS = envparse.env_list(ENV, "ALERT_EMAILS", [])
ALERT_FAILURES_PER_HOUR = envparse.env_int(ENV, "ALERT_FAILURES_PER_HOUR", 10)
DEFAULT_FROM_EMAIL = ENV.get("DEFAULT_FROM_EMAIL", "ml-connector@localhost")
EMAIL_HOST = ENV.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envparse.env_int(ENV, "EMAIL_PORT", 25)

LOG_LEVEL = ENV.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact_secrets": {"()": "connector.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
    },
}

# Sandbox: shortens every emulated duration (limit windows, token lifetimes) by this factor.
SANDBOX_TIME_SCALE = float(ENV.get("SANDBOX_TIME_SCALE", "1"))
# Send sandbox webhooks through the task queue as soon as they are queued; off when a
# separate `manage.py sandbox_deliver --loop` process sends them (scripts/sandbox.sh).
SANDBOX_WEBHOOK_AUTODELIVER = envparse.env_bool(ENV, "SANDBOX_WEBHOOK_AUTODELIVER", True)
# Sandbox: the shared secret a script or another process sends as the X-Sandbox-Token header to use
# the control endpoints (/sandbox/_webhooks/…, /sandbox/<service>/_faults, _counters, _reset); a
# staff session with CSRF works without it. Empty: token access off. scripts/run.sh makes one per
# data folder (var/sandbox-control-token).
SANDBOX_CONTROL_TOKEN = ENV.get("SANDBOX_CONTROL_TOKEN", "").strip()
