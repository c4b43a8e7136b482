"""Settings parsing: every environment variable the README documents."""

import ast
import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config import env as envparse


def test_default_database_is_sqlite_in_the_data_folder_with_wal_and_immediate(tmp_path):
    config = envparse.database_config({}, tmp_path)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "connector.sqlite3")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert "busy_timeout" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 10


def test_embedded_sqlite_keeps_connections_like_a_database_url(tmp_path):
    assert envparse.database_config({}, tmp_path)["CONN_MAX_AGE"] == 60
    assert envparse.database_config({"DATABASE_CONN_MAX_AGE": "0"}, tmp_path)["CONN_MAX_AGE"] == 0
    url = {"DATABASE_URL": f"sqlite:///{tmp_path}/other.db", "DATABASE_CONN_MAX_AGE": "30"}
    assert envparse.database_config(url, tmp_path)["CONN_MAX_AGE"] == 30


def test_database_url_switches_to_postgresql(tmp_path):
    config = envparse.database_config(
        {"DATABASE_URL": "postgres://postgres:pw@db.internal:5433/books"}, tmp_path
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        5433,
        "books",
        "postgres",
    )
    assert config["CONN_HEALTH_CHECKS"] is True
    assert "transaction_mode" not in config.get("OPTIONS", {})


def test_sqlite_database_url_keeps_the_safe_options(tmp_path):
    config = envparse.database_config({"DATABASE_URL": f"sqlite:///{tmp_path}/other.db"}, tmp_path)
    assert config["NAME"].endswith("other.db")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_unsupported_database_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="supports PostgreSQL"):
        envparse.database_config({"DATABASE_URL": "mysql://root@localhost/x"}, tmp_path)


def test_orm_broker_by_default_and_redis_with_redis_url():
    orm = envparse.q_cluster_config({})
    assert orm["orm"] == "default" and "redis" not in orm
    redis = envparse.q_cluster_config({"REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert redis["redis"] == "redis://127.0.0.1:6379/3" and "orm" not in redis


def test_q_cluster_is_configured_safely():
    config = envparse.q_cluster_config({})
    assert config["timeout"] < config["retry"]
    assert config["ack_failures"] is True
    assert 1 <= config["max_attempts"] <= 5


def test_orm_broker_polls_often_and_q_poll_sets_it():
    assert envparse.q_cluster_config({})["poll"] <= 0.1  # the drain starts within a tenth of a second
    assert envparse.q_cluster_config({"Q_POLL": "0.25"})["poll"] == 0.25
    assert "poll" not in envparse.q_cluster_config({"REDIS_URL": "redis://127.0.0.1:6379/3"})


@pytest.mark.parametrize("value", ["0", "often", "11"])
def test_q_poll_outside_its_range_is_refused(value):
    with pytest.raises(ImproperlyConfigured, match="Q_POLL"):
        envparse.q_cluster_config({"Q_POLL": value})


def test_q_timeout_not_below_retry_is_refused():
    with pytest.raises(ImproperlyConfigured, match="lower than Q_RETRY"):
        envparse.q_cluster_config({"Q_TIMEOUT": "600", "Q_RETRY": "600"})


def test_a_drain_is_bounded_well_inside_the_task_timeout():
    assert envparse.inbox_drain_seconds({}, 300) == 60
    assert envparse.inbox_drain_seconds({"INBOX_DRAIN_SECONDS": "20"}, 300) == 20
    with pytest.raises(ImproperlyConfigured, match="INBOX_DRAIN_SECONDS"):
        envparse.inbox_drain_seconds({"INBOX_DRAIN_SECONDS": "300"}, 300)


def test_bad_redis_url_is_refused():
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        envparse.q_cluster_config({"REDIS_URL": "localhost:6379"})


def test_cache_follows_redis_url():
    assert envparse.cache_config({})["default"]["BACKEND"].endswith("DatabaseCache")
    cache = envparse.cache_config({"REDIS_URL": "redis://127.0.0.1:6379/1"})["default"]
    assert cache["BACKEND"].endswith("RedisCache") and cache["LOCATION"] == "redis://127.0.0.1:6379/1"


def test_the_webhook_rate_limit_counts_in_redis_or_in_memory():
    assert envparse.cache_config({})["throttle"]["BACKEND"].endswith("LocMemCache")
    throttle = envparse.cache_config({"REDIS_URL": "redis://127.0.0.1:6379/1"})["throttle"]
    assert throttle["BACKEND"].endswith("RedisCache") and throttle["LOCATION"] == "redis://127.0.0.1:6379/1"


def test_missing_encryption_key_with_debug_off_stops_startup_and_says_how(tmp_path):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        envparse.field_encryption_keys({}, debug=False, data_dir=tmp_path)
    message = str(excinfo.value)
    assert "FIELD_ENCRYPTION_KEY is not set" in message
    assert "Fernet.generate_key()" in message
    assert not (tmp_path / "field-encryption.key").exists()


def test_missing_key_in_development_is_generated_once_and_reused(tmp_path):
    first = envparse.field_encryption_keys({}, debug=True, data_dir=tmp_path)
    second = envparse.field_encryption_keys({}, debug=True, data_dir=tmp_path)
    assert first == second and len(first) == 1
    Fernet(first[0])  # a usable key
    key_file = tmp_path / "field-encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_key_list_allows_rotation_and_rejects_garbage(tmp_path):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert envparse.field_encryption_keys({"FIELD_ENCRYPTION_KEY": f"{new}, {old}"}, False, tmp_path) == [
        new,
        old,
    ]
    with pytest.raises(ImproperlyConfigured, match="entry 2 is not a valid Fernet key"):
        envparse.field_encryption_keys({"FIELD_ENCRYPTION_KEY": f"{new},not-a-key"}, False, tmp_path)


def test_secret_key_required_with_debug_off(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        envparse.secret_key({}, debug=False, data_dir=tmp_path)
    assert envparse.secret_key({"SECRET_KEY": "abc"}, debug=False, data_dir=tmp_path) == "abc"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("on", True), ("false", False), ("0", False)])
def test_env_bool(raw, expected):
    assert envparse.env_bool({"X": raw}, "X", not expected) is expected


def test_env_bool_rejects_nonsense():
    with pytest.raises(ImproperlyConfigured, match="not a yes/no"):
        envparse.env_bool({"X": "maybe"}, "X", False)


def test_settings_module_refuses_to_start_without_a_key_when_debug_is_off(tmp_path):
    """The real settings module, imported in a fresh interpreter, as production would."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"FIELD_ENCRYPTION_KEY", "DJANGO_DEBUG"}}
    env.update(
        {"SECRET_KEY": "x", "CONNECTOR_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not set and DEBUG is off" in result.stderr


ENV_READERS = {"env_bool", "env_int", "env_float", "env_list", "get", "getenv"}
ENV_NAMES = {"ENV", "env", "environ"}
VARIABLE = re.compile(r"[A-Z][A-Z0-9_]+")


def _reads_the_environment(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ENV_READERS:
        return False
    if name in ("get", "getenv"):  # ENV.get, env.get, os.environ.get, os.getenv
        owner = func.value if isinstance(func, ast.Attribute) else None
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        return owner_name in ENV_NAMES or name == "getenv"
    return True


def variables_read_by_config() -> set[str]:
    """Every environment variable a module of config/ reads (env_* helpers, .get, [...])."""
    found = set()
    for path in (Path(settings.BASE_DIR) / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            arguments = []
            if isinstance(node, ast.Call) and _reads_the_environment(node):
                # env_int(env, "NAME", default); ENV.get("NAME", default)
                is_helper = getattr(node.func, "attr", getattr(node.func, "id", "")).startswith("env_")
                arguments = node.args[1:2] if is_helper else node.args[:1]
            elif isinstance(node, ast.Subscript) and getattr(node.value, "id", "") in ENV_NAMES:
                arguments = [node.slice]
            for argument in arguments:
                text = argument.value if isinstance(argument, ast.Constant) else None
                if isinstance(text, str) and VARIABLE.fullmatch(text):
                    found.add(text)
    return found


def readme_table_variables() -> set[str]:
    """The variables the README's tables name in their first column (`NAME`, `A` / `B`, `A`, `B`)."""
    found = set()
    for line in (Path(settings.BASE_DIR) / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            found |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_column))
    return found


def test_every_environment_variable_config_reads_is_in_the_readme_tables():
    read = variables_read_by_config()
    # The reader finds the helpers' reads, the settings module's own and env.py's (the check can fail).
    assert {"BEHIND_PROXY", "SECRET_KEY", "TIME_ZONE", "XERO_SCOPES", "WEBHOOK_RATE_LIMIT_PER_MINUTE"} <= read
    missing = sorted(read - readme_table_variables())
    assert not missing, f"read in config/ but not in the README's Configuration reference: {missing}"


def test_the_production_table_lists_every_security_setting():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    table = readme.split("### Production security settings", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", table, flags=re.MULTILINE))
    security = {
        "DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "FIELD_ENCRYPTION_KEY",
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
        "SECURE_COOKIES", "BEHIND_PROXY", "SESSION_COOKIE_AGE", "REQUIRE_2FA", "AXES_ENABLED",
        "AXES_FAILURE_LIMIT", "AXES_COOLOFF_MINUTES", "WEBHOOK_MAX_BODY_BYTES",
        "WEBHOOK_REJECTION_INTERVAL_SECONDS", "WEBHOOK_RATE_LIMIT_PER_MINUTE", "SANDBOX_ENABLED",
        "SANDBOX_CONTROL_TOKEN", "CONNECTOR_DATA_DIR",
    }  # fmt: skip
    assert not sorted(security - listed), sorted(security - listed)
