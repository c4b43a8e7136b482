"""Production settings from the environment: `check --deploy` is clean with the documented production
environment; X-Forwarded-Proto is trusted only behind a proxy; sessions last 12 hours; the data folder
is this user's only."""

import json
import os
import secrets
import stat
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "connector.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://connector.example.com",
    "PUBLIC_BASE_URL": "https://connector.example.com",
}
# What the suite's own settings set and production leaves alone.
DROPPED = {"DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT", "SECURE_COOKIES", "BEHIND_PROXY"}
SHOWN = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith("DJANGO_")}
    env.update(PRODUCTION, CONNECTOR_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def _run(env, *args):
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, cwd=settings.BASE_DIR
    )


def _settings(tmp_path, **extra) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {SHOWN!r}}}))"
    )
    result = _run(_env(tmp_path, **extra), "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_deploy_check_is_clean_with_the_production_environment(tmp_path):
    result = _run(_env(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "security.W" not in output, output
    assert "no issues" in output


def test_production_defaults_are_strict(tmp_path):
    values = _settings(tmp_path)
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31536000 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_AGE"] == 12 * 3600


def test_the_forwarded_proto_header_is_trusted_only_behind_a_proxy(tmp_path):
    assert _settings(tmp_path)["SECURE_PROXY_SSL_HEADER"] is None
    assert _settings(tmp_path, BEHIND_PROXY="1")["SECURE_PROXY_SSL_HEADER"] == [
        "HTTP_X_FORWARDED_PROTO",
        "https",
    ]


def test_each_one_follows_its_variable(tmp_path):
    values = _settings(
        tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600", SESSION_COOKIE_AGE="3600"
    )
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SESSION_COOKIE_AGE"] == 3600


def test_development_sends_no_hsts_and_keeps_plain_http(tmp_path):
    values = _settings(tmp_path, DJANGO_DEBUG="1")
    assert values["SECURE_HSTS_SECONDS"] == 0 and values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_AGE"] == 12 * 3600


def test_the_data_folder_and_its_files_are_this_users_only(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "sandbox-credentials.txt").write_text("demo")
    (data / "sandbox-credentials.txt").chmod(0o644)
    _settings(tmp_path)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [entry for entry in data.iterdir() if entry.is_file()]
    assert {entry.name for entry in files} >= {"sandbox-credentials.txt", "connector.sqlite3"}
    for entry in files:
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600, entry.name


def test_the_suites_own_data_folder_is_locked_down_too():
    assert stat.S_IMODE(settings.DATA_DIR.stat().st_mode) == 0o700
