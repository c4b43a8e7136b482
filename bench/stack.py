"""The end-to-end benchmark stack: the sandbox and the connector as separate processes.

Used by bench/latency.py and bench/api_economy.py. ``Stack`` (a context manager) makes a
temporary data folder, its own databases, and starts:

- the sandbox (Xero and Pipedrive emulators) as its own service, as ``scripts/sandbox.sh``
  runs it: gunicorn on a free port plus ``manage.py sandbox_deliver --loop`` sending its
  webhooks, with its own database (SQLite file, or ``<name>_sandbox`` on PostgreSQL);
- the connector as in production: gunicorn (sync workers) on another free port and
  ``manage.py qcluster`` with two or more task workers, on SQLite + the ORM broker or on
  PostgreSQL + Redis.

This process (the driver) uses the connector's settings and database (Django set up in
process, to create the sync pair and read the inbox); the sandbox's steps run as
subprocesses of ``bench/sandbox_side.py`` with the sandbox's settings. Everything stops and
the data folder and databases are removed on exit (``keep=True`` keeps the folder and logs).

PostgreSQL and Redis: ``BENCH_POSTGRES_URL`` (default
``postgres://postgres@127.0.0.1:5432/ml_bench_e2e``; the name must contain "bench": it is
dropped and created again, with ``<name>_sandbox`` beside it) and ``BENCH_REDIS_URL``
(default ``redis://127.0.0.1:6379/8``, flushed first).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/ml_bench_e2e"
REDIS_DEFAULT = "redis://127.0.0.1:6379/8"
SENDER_INTERVAL_S = 0.05  # the sandbox's webhook sender polls its outbox this often


class CannotRun(Exception):
    """The stack could not be set up (exit status 2)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, data: bytes | None = None, timeout: float = 10, headers: dict | None = None):
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers=headers or {}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99 (nearest rank), mean and max, in milliseconds, of values in seconds."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {
        "count": len(ordered),
        "p50": round(1000 * rank(50), 1),
        "p95": round(1000 * rank(95), 1),
        "p99": round(1000 * rank(99), 1),
        "mean": round(1000 * sum(ordered) / len(ordered), 1),
        "max": round(1000 * ordered[-1], 1),
    }


@dataclass
class StackConfig:
    database: str = "sqlite"  # sqlite (with the ORM broker) or postgres (with Redis)
    q_workers: int = 2
    web_workers: int = 3
    xero_minute_limit: int = 60
    # Requests per 2 s per Pipedrive token, for the sandbox's company and the connector's limiter alike;
    # None keeps the plan's (the bench's API token on the smallest plan: 20).
    pipedrive_burst_limit: int | None = None
    keep: bool = False
    log_level: str = "WARNING"
    extra_env: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "PostgreSQL + Redis" if self.database == "postgres" else "SQLite + ORM broker"


class Stack:
    def __init__(self, config: StackConfig):
        self.config = config
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
        # The sandbox's control endpoints (_counters, _webhooks/deliveries) want this header.
        self.control_headers = {"X-Sandbox-Token": secrets.token_urlsafe(24)}
        self.sandbox_port, self.connector_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.connector_url = f"http://127.0.0.1:{self.connector_port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.postgres_url = self.sandbox_postgres_url = None
        if config.database == "postgres":
            self.postgres_url = os.environ.get("BENCH_POSTGRES_URL", POSTGRES_DEFAULT)
            self.sandbox_postgres_url = (
                self.postgres_url.rsplit("/", 1)[0] + "/" + self._db_name() + "_sandbox"
            )
        self.redis_url = os.environ.get("BENCH_REDIS_URL", REDIS_DEFAULT) if self.postgres_url else None
        self.sandbox_env = self._sandbox_env()
        self.connector_env = self._connector_env()
        self.pair_id = None
        self.tenant_id = ""

    def _db_name(self) -> str:
        return self.postgres_url.rsplit("/", 1)[1].split("?")[0]

    # ------------------------------------------------------------------ environments

    def _base_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"} and not k.startswith("XERO_")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_DEBUG": "0",
                "SECURE_COOKIES": "0",
                "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
                "SECRET_KEY": secrets.token_urlsafe(50),
                "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "LOG_LEVEL": self.config.log_level,
            }
        )
        return env

    def _sandbox_env(self) -> dict[str, str]:
        env = self._base_env()
        env.update(
            {
                "CONNECTOR_DATA_DIR": str(self.data_dir / "sandbox"),
                "SANDBOX_ENABLED": "1",
                "SANDBOX_WEBHOOK_AUTODELIVER": "0",
                "SANDBOX_CONTROL_TOKEN": self.control_headers["X-Sandbox-Token"],
                "PUBLIC_BASE_URL": self.sandbox_url,
            }
        )
        if self.sandbox_postgres_url:
            env["DATABASE_URL"] = self.sandbox_postgres_url
        return env

    def _connector_env(self) -> dict[str, str]:
        env = self._base_env()
        sandbox = f"{self.sandbox_url}/sandbox"
        env.update(
            {
                "CONNECTOR_DATA_DIR": str(self.data_dir / "connector"),
                # The connector sends a Pipedrive token to the sandbox's address only with the sandbox
                # switched on (connector/connections/hosts.py); its own copy of the sandbox stays unused.
                "SANDBOX_ENABLED": "1",
                "PUBLIC_BASE_URL": self.connector_url,
                "XERO_AUTHORIZE_URL": f"{sandbox}/xero/login/identity/connect/authorize",
                "XERO_IDENTITY_URL": f"{sandbox}/xero/identity",
                "XERO_CONNECTIONS_URL": f"{sandbox}/xero/api/connections",
                "XERO_API_URL": f"{sandbox}/xero/api/api.xro/2.0",
                "PIPEDRIVE_API_URL": f"{sandbox}/pipedrive",
                "PIPEDRIVE_OAUTH_URL": f"{sandbox}/pipedrive/oauth",
                "Q_WORKERS": str(self.config.q_workers),
                "Q_CLUSTER_NAME": f"bench-{secrets.token_hex(3)}",
                "XERO_MINUTE_LIMIT": str(self.config.xero_minute_limit),
            }
        )
        if self.config.pipedrive_burst_limit:
            env["PIPEDRIVE_BURST_LIMIT"] = str(self.config.pipedrive_burst_limit)
        if self.postgres_url:
            env["DATABASE_URL"] = self.postgres_url
            env["REDIS_URL"] = self.redis_url
        env.update(self.config.extra_env)
        return env

    # ------------------------------------------------------------------ start and stop

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        if self.postgres_url:
            from bench.webhook_intake import flush_redis, recreate_postgres_database

            recreate_postgres_database(self.postgres_url)
            recreate_postgres_database(self.sandbox_postgres_url)
            flush_redis(self.redis_url)
        # The sandbox migrates in its own process while this one migrates the connector's database.
        migrate = self._spawn(
            "sandbox-migrate",
            [
                "sh",
                "-c",
                f"{sys.executable} manage.py migrate --noinput -v0 && "
                f"{sys.executable} manage.py createcachetable -v0",
            ],
            self.sandbox_env,
        )
        os.environ.clear()
        os.environ.update(self.connector_env)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        call_command("createcachetable", verbosity=0)
        if migrate.wait() != 0:
            raise CannotRun(f"the sandbox's migrate failed:\n{self.tail('sandbox-migrate')}")
        keys = {
            "pair_key": secrets.token_urlsafe(24),
            "xero_webhook_key": secrets.token_urlsafe(48),
            "pipedrive_webhook_user": "bench",
            "pipedrive_webhook_password": secrets.token_urlsafe(16),
        }
        credentials = self.sandbox(
            "setup",
            {
                **keys,
                "connector_url": self.connector_url,
                "xero_minute_limit": self.config.xero_minute_limit,
                "pipedrive_burst_limit": self.config.pipedrive_burst_limit,
            },
        )
        self._create_pair(credentials, keys)
        self._spawn(
            "sandbox-web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.sandbox_port}",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--timeout",
                "60",
                "--log-level",
                "warning",
                *self._access_log("sandbox"),
            ],
            self.sandbox_env,
        )
        self._spawn(
            "sandbox-sender",
            [sys.executable, "manage.py", "sandbox_deliver", "--loop", "--interval", str(SENDER_INTERVAL_S)],
            self.sandbox_env,
        )
        self._spawn(
            "connector-web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.connector_port}",
                "--workers",
                str(self.config.web_workers),
                "--timeout",
                "60",
                "--log-level",
                "warning",
                *self._access_log("connector"),
            ],
            self.connector_env,
        )
        self._spawn("connector-qcluster", [sys.executable, "manage.py", "qcluster"], self.connector_env)
        self._wait_for(f"{self.sandbox_url}/sandbox/xero/_counters", "sandbox-web")
        self._wait_for(f"{self.connector_url}/admin/login/", "connector-web")

    def _access_log(self, name: str) -> list[str]:
        """Each request's line and duration in microseconds (``request_durations`` reads the sandbox's)."""
        log = str(self.data_dir / f"{name}-access.log")
        return ["--access-logfile", log, "--access-logformat", '"%(r)s" %(s)s %(D)s']

    def request_durations(self, name: str = "sandbox") -> dict[str, list[float]]:
        """Seconds each request took to answer, by "METHOD /path" (ids and query strings dropped)."""
        durations: dict[str, list[float]] = {}
        with contextlib.suppress(OSError):
            for line in (self.data_dir / f"{name}-access.log").read_text(errors="replace").splitlines():
                try:
                    request, _status, micros = line.rsplit(" ", 2)
                    method, target = request.strip('"').split(" ")[:2]
                except ValueError:
                    continue
                path = "/".join(
                    "{id}" if part.isdigit() or len(part) == 36 else part
                    for part in target.split("?")[0].split("/")
                )
                durations.setdefault(f"{method} {path}", []).append(int(micros) / 1e6)
        return durations

    def _create_pair(self, credentials: dict, keys: dict) -> None:
        from datetime import datetime

        from django.conf import settings
        from django.db import connections
        from django.utils import timezone

        from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection

        xero = XeroConnection.objects.create(
            tenant_id=credentials["tenant_id"],
            tenant_name=credentials["tenant_name"],
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            access_token=credentials["access_token"],
            refresh_token=credentials["refresh_token"],
            expires_at=datetime.fromisoformat(credentials["expires_at"]),
            scopes=credentials["scopes"],
            status=ConnectionStatus.ACTIVE,
            secrets_set_at=timezone.now(),
            last_refreshed_at=timezone.now(),
        )
        pipedrive = PipedriveConnection.objects.create(
            company_id=credentials["company_id"],
            company_name=credentials["company_name"],
            company_domain=credentials["company_domain"],
            api_domain=settings.PIPEDRIVE_API_URL,
            auth_type=PipedriveConnection.AuthType.API_TOKEN,
            api_token=credentials["api_token"],
            user_name=credentials["user_name"],
            user_email=credentials["user_email"],
            status=ConnectionStatus.ACTIVE,
            secrets_set_at=timezone.now(),
        )
        pair = SyncPair.objects.create(
            name="Bench pair",
            key=keys["pair_key"],
            xero_connection=xero,
            pipedrive_connection=pipedrive,
            xero_webhook_key=keys["xero_webhook_key"],
            pipedrive_webhook_user=keys["pipedrive_webhook_user"],
            pipedrive_webhook_password=keys["pipedrive_webhook_password"],
            secrets_set_at=timezone.now(),
        )
        self.pair_id, self.tenant_id = pair.pk, credentials["tenant_id"]
        connections.close_all()

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.data_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def _wait_for(self, url: str, name: str, limit_s: float = 90) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise CannotRun(f"{name} exited with {process.returncode}:\n{self.tail(name)}")
            try:
                urllib.request.urlopen(url, timeout=5).close()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.3)
        raise CannotRun(f"{name} did not answer {url} within {limit_s:g} s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = (self.data_dir / f"{name}.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if name != "sandbox-migrate" and process.poll() is not None:
                raise CannotRun(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.postgres_url and not self.config.keep:
            with contextlib.suppress(Exception):
                self._drop_databases()
        if self.config.keep:
            print(f"Data folder and logs kept: {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _drop_databases(self) -> None:
        import dj_database_url
        import psycopg

        for url in (self.postgres_url, self.sandbox_postgres_url):
            config = dj_database_url.parse(url)
            conninfo = psycopg.conninfo.make_conninfo(
                dbname="postgres",
                user=config.get("USER") or "postgres",
                password=config.get("PASSWORD") or None,
                host=config.get("HOST") or "127.0.0.1",
                port=config.get("PORT") or 5432,
            )
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')

    # ------------------------------------------------------------------ using it

    def sandbox(self, command: str, arguments: dict | None = None, timeout: float = 900) -> dict:
        """Run one bench/sandbox_side.py step with the sandbox's settings; its JSON answer."""
        completed = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "sandbox_side.py"), command],
            input=json.dumps(arguments or {}),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.sandbox_env,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise CannotRun(f"sandbox step {command} failed:\n{completed.stderr[-3000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def counters(self, service: str) -> dict:
        return http_json(f"{self.sandbox_url}/sandbox/{service}/_counters", headers=self.control_headers)

    def outbox_busy(self) -> int:
        busy = 0
        for status in ("pending", "sending"):
            url = f"{self.sandbox_url}/sandbox/_webhooks/deliveries?status={status}&limit=1000"
            busy += len(http_json(url, headers=self.control_headers)["deliveries"])
        return busy

    def inbox_busy(self) -> int:
        from django.db import connections

        from connector.models import WebhookEvent

        busy = WebhookEvent.objects.filter(
            status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSING]
        ).count()
        connections.close_all()
        return busy

    def wait_until_quiet(self, limit_s: float = 600, settle_s: float = 1.5) -> float:
        """Wait until the sandbox has nothing left to send and the inbox nothing left to sync.

        Returns the seconds waited; raises CannotRun past ``limit_s``.
        """
        started = time.monotonic()
        quiet_since = None
        while time.monotonic() - started < limit_s:
            self.check_alive()
            if self.outbox_busy() == 0 and self.inbox_busy() == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return time.monotonic() - started
            else:
                quiet_since = None
            time.sleep(0.25)
        raise CannotRun(
            f"still busy after {limit_s:g} s: outbox {self.outbox_busy()}, inbox {self.inbox_busy()};"
            f" qcluster log:\n{self.tail('connector-qcluster')}"
        )
