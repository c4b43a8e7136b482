"""Benchmark of the Xero webhook receiver under gunicorn, beside a bare Django view.

    .venv/bin/python bench/webhook_intake.py [--duration 20] [--connections 32] [--workers 3]
        [--worker-class sync|gthread] [--threads 4] [--database sqlite|postgres|postgres://...]
        [--redis [URL]] [--with-workers] [--rate N] [--json results.json]

One run:
  1. prepares a fresh data folder (temporary ``CONNECTOR_DATA_DIR``; PostgreSQL gets its own
     database, dropped and created again), migrates, and creates a Xero connection, a
     Pipedrive connection and a sync pair with a known webhook key through the ORM;
  2. pre-generates unique signed 10-event batches (every event a new inbox row) into a file;
  3. starts gunicorn (``config.wsgi`` with ``bench.settings``: DEBUG off, the sandbox off,
     generated SECRET_KEY and FIELD_ENCRYPTION_KEY) on a free port of 127.0.0.1;
  4. drives wrk (``bench/webhook_intake.lua``) at the bare view, then at the receiver;
  5. prints requests/s, p50/p99 latency and non-2xx answers per target, the ratio
     receiver/bare, and checks that no acknowledged event was lost.

It prints figures and never asserts timing. Exit status: 0 when it ran and lost nothing,
1 when acknowledged events are missing from the inbox, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import hmac
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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "webhook_intake.lua"
EVENTS_PER_BATCH = 10
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/ml_connector_bench"
REDIS_DEFAULT = "redis://127.0.0.1:6379/5"
BARE_PATH = "/bench/bare/"
# Every resource id of a run is uuid(int = RUN_TAG << 64 | batch << 8 | event): the inbox
# rows can be mapped back to the batch they came in without keeping a table of ids.
CATEGORIES = [("CONTACT", "Contacts"), ("INVOICE", "Invoices")]


class CannotRun(Exception):
    """The benchmark could not be set up or driven (exit status 2)."""


# --- Batches ---------------------------------------------------------------------------


def xero_signature(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def resource_uuid(run_tag: int, batch: int, event: int) -> uuid.UUID:
    return uuid.UUID(int=(run_tag << 64) | (batch << 8) | event)


def batch_of(resource_id: str, run_tag: int) -> int | None:
    try:
        number = uuid.UUID(resource_id).int
    except ValueError:
        return None
    if number >> 64 != run_tag:
        return None
    return (number >> 8) & ((1 << 56) - 1)


def make_batch(batch: int, tenant_id: str, run_tag: int, start: datetime) -> bytes:
    """One Xero webhook body of EVENTS_PER_BATCH events, as Xero sends it (compact JSON)."""
    events = []
    for event in range(EVENTS_PER_BATCH):
        category, collection = CATEGORIES[event % len(CATEGORIES)]
        resource_id = str(resource_uuid(run_tag, batch, event))
        moment = start + timedelta(milliseconds=batch * EVENTS_PER_BATCH + event)
        events.append(
            {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/{collection}/{resource_id}",
                "resourceId": resource_id,
                "eventDateUtc": moment.replace(tzinfo=None).isoformat(timespec="milliseconds"),
                "eventType": "UPDATE" if event % 3 else "CREATE",
                "eventCategory": category,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
            }
        )
    sequence = batch * EVENTS_PER_BATCH + 1
    payload = {
        "events": events,
        "firstEventSequence": sequence,
        "lastEventSequence": sequence + EVENTS_PER_BATCH - 1,
        "entropy": secrets.token_hex(10).upper(),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def write_batches(path: Path, count: int, tenant_id: str, key: str, run_tag: int) -> int:
    """Write ``count`` signed batches, one "signature<TAB>body" line each; return the file size."""
    start = datetime.now(UTC) - timedelta(days=1)
    with path.open("wb") as out:
        for batch in range(count):
            body = make_batch(batch, tenant_id, run_tag, start)
            out.write(xero_signature(body, key).encode() + b"\t" + body + b"\n")
    return path.stat().st_size


# --- Environment, database and fixtures --------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(args, data_dir: Path, closed_port: int) -> dict[str, str]:
    """The environment shared by setup, gunicorn and qcluster: production settings, nowhere to sync to."""
    from cryptography.fernet import Fernet

    nowhere = f"http://127.0.0.1:{closed_port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": str(ROOT),
            "CONNECTOR_DATA_DIR": str(data_dir),
            "DJANGO_DEBUG": "0",
            "SANDBOX_ENABLED": "0",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
            # wrk sends thousands a second from one address: the receiver's throughput, not the limit
            # (WEBHOOK_RATE_LIMIT_PER_MINUTE=3000 in the environment measures it with the limit's cost).
            "WEBHOOK_RATE_LIMIT_PER_MINUTE": os.environ.get("WEBHOOK_RATE_LIMIT_PER_MINUTE", "0"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "LOG_LEVEL": args.log_level,
            # Drains (with --with-workers) must fail fast against a closed port, not wait.
            "XERO_IDENTITY_URL": nowhere,
            "XERO_AUTHORIZE_URL": f"{nowhere}/authorize",
            "XERO_CONNECTIONS_URL": f"{nowhere}/connections",
            "XERO_API_URL": f"{nowhere}/api.xro/2.0",
            "PIPEDRIVE_API_URL": nowhere,
            "PIPEDRIVE_OAUTH_URL": nowhere,
            "HTTP_TIMEOUT_SECONDS": "2",
            "API_MAX_RETRIES": "0",
            "Q_WORKERS": str(args.q_workers),
        }
    )
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.conn_max_age is not None:
        env["DATABASE_CONN_MAX_AGE"] = str(args.conn_max_age)
    if args.redis:
        env["REDIS_URL"] = args.redis
    return env


def recreate_postgres_database(url: str) -> None:
    """Drop and create the bench database: every run starts from an empty inbox."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    name = config["NAME"]
    if "bench" not in name:
        raise CannotRun(f"refusing to drop database {name!r}: its name must contain 'bench'.")
    admin_conninfo = psycopg.conninfo.make_conninfo(
        dbname="postgres",
        user=config.get("USER") or "postgres",
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or "127.0.0.1",
        port=config.get("PORT") or 5432,
    )
    try:
        with psycopg.connect(admin_conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise CannotRun(f"PostgreSQL: {exc}") from exc


def flush_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        raise CannotRun(f"Redis {url}: {exc}") from exc


@dataclass
class Fixture:
    pair_key: str
    webhook_key: str
    tenant_id: str


def prepare_database(closed_port: int) -> Fixture:
    """Migrate and create one active Xero connection, Pipedrive connection and sync pair."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)

    from django.db import connections
    from django.utils import timezone

    from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection

    tenant_id = str(uuid.uuid4())
    webhook_key = base64.b64encode(secrets.token_bytes(48)).decode()
    xero = XeroConnection.objects.create(
        tenant_id=tenant_id,
        tenant_name="Bench organisation",
        client_id="bench-client",
        client_secret=secrets.token_urlsafe(24),
        access_token=secrets.token_urlsafe(24),
        refresh_token=secrets.token_urlsafe(24),
        expires_at=timezone.now() + timedelta(hours=1),
        status=ConnectionStatus.ACTIVE,
        secrets_set_at=timezone.now(),
    )
    pipedrive = PipedriveConnection.objects.create(
        company_id=1,
        company_name="Bench company",
        api_domain=f"http://127.0.0.1:{closed_port}",
        auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token=secrets.token_urlsafe(24),
        status=ConnectionStatus.ACTIVE,
    )
    pair = SyncPair.objects.create(
        name="Bench pair", xero_connection=xero, pipedrive_connection=pipedrive, xero_webhook_key=webhook_key
    )
    connections.close_all()
    return Fixture(pair_key=pair.key, webhook_key=webhook_key, tenant_id=tenant_id)


# --- Processes ---------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    how = "install it with: apt-get install -y wrk (Debian/Ubuntu package 'wrk')"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk ...", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
        if subprocess.run(install, **quiet).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], **quiet)  # an old or empty package list
            subprocess.run(install, **quiet)
        found = shutil.which("wrk")
        if found:
            return found
    raise CannotRun(f"wrk is not installed; {how}.")


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_gunicorn(args, env: dict[str, str], data_dir: Path) -> Server:
    port = free_port()
    log_path = data_dir / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--log-level", "warning",
        "--error-logfile", str(log_path),
        "--backlog", "2048",
        "--timeout", "60",
    ]  # fmt: skip
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    # The connector logs to stderr: keep it beside gunicorn's own error log.
    with (data_dir / "server-output.log").open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CannotRun(f"gunicorn exited with {process.returncode}; see {log_path}:\n{tail(log_path)}")
        try:
            if post(server.url(BARE_PATH), b"{}", {}) == 200:
                return server
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise CannotRun(f"gunicorn did not answer within 60 s; see {log_path}")


def start_qcluster(env: dict[str, str], data_dir: Path) -> subprocess.Popen:
    with (data_dir / "qcluster.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def process_cpu_seconds(parent_pid: int) -> float:
    """User + system CPU of the children of ``parent_pid`` (the gunicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces: the fields start after its closing parenthesis.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent_pid:
                total += int(fields[11]) + int(fields[12])
    return total / tick


# --- Load ----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    target: str
    duration_s: float
    requests: int
    ok: int
    not_ok: int
    socket_errors: int
    latency_ms: dict[str, float]
    threads: list[dict] = field(default_factory=list)
    server_cpu_s: float = 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def run_wrk(
    wrk: str, args, target: str, server: Server, path: str, body_file: Path, duration: float
) -> LoadResult:
    url = server.url(path)
    command = [
        wrk, "--threads", str(args.wrk_threads), "--connections", str(args.connections),
        "--duration", f"{duration:g}s", "--timeout", "10s", "--script", str(LUA_SCRIPT), url,
        "--", str(body_file), str(args.wrk_threads),
    ]  # fmt: skip
    if args.rate:
        # Each connection waits between requests so that all together offer about --rate/s.
        command.append(f"{max(1, round(1000 * args.connections / args.rate))}")
    cpu_before = process_cpu_seconds(server.process.pid)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
    cpu_after = process_cpu_seconds(server.process.pid)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise CannotRun(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["errors"]
    return LoadResult(
        target=target,
        duration_s=data["duration_us"] / 1e6,
        requests=data["requests"],
        ok=sum(t["ok"] for t in data["threads"]),
        not_ok=sum(t["not_ok"] for t in data["threads"]),
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        latency_ms={name: value / 1000 for name, value in data["latency_us"].items()},
        threads=data["threads"],
        server_cpu_s=cpu_after - cpu_before,
    )


# --- Inbox check -----------------------------------------------------------------------------


def batches_sent(result: LoadResult, thread_count: int) -> set[int]:
    """The distinct batch numbers wrk wrote: thread t sends t, t+T, ... and wraps after its share."""
    sent = set()
    for thread in result.threads:
        distinct = min(thread["sent"], thread["share"])
        sent.update(thread["thread"] + k * thread_count for k in range(distinct))
    return sent


def wait_until_quiet(count_rows, settle_s: float = 1.5, limit_s: float = 30) -> int:
    """Wait until the inbox stops growing: requests in flight when wrk stopped still commit."""
    last, stable_since, deadline = count_rows(), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = count_rows()
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= settle_s:
            break
    return last


@dataclass
class InboxCheck:
    requests_sent: int
    batches_sent: int
    batches_acknowledged: int
    in_flight_or_refused: int
    inbox_rows: int
    complete_batches: int
    partial_batches: int
    missing_batches: int
    foreign_rows: int
    statuses: dict[str, int]
    queued_tasks: int | None

    @property
    def events_sent(self) -> int:
        return self.batches_sent * EVENTS_PER_BATCH

    @property
    def lost_events_at_least(self) -> int:
        """Missing batches beyond those that may never have been acknowledged."""
        return max(0, self.missing_batches - self.in_flight_or_refused) * EVENTS_PER_BATCH

    @property
    def verdict(self) -> str:
        if self.partial_batches:
            return f"LOST: {self.partial_batches} batches stored only in part"
        if self.lost_events_at_least:
            return f"LOST: at least {self.lost_events_at_least} acknowledged events are not in the inbox"
        if self.missing_batches:
            return (
                f"unproven: {self.missing_batches} batches missing, no more than were in flight or refused "
                f"({self.in_flight_or_refused})"
            )
        return "zero lost events (inbox rows == events sent)"

    @property
    def lost(self) -> bool:
        return bool(self.partial_batches or self.lost_events_at_least)


def check_inbox(result: LoadResult, thread_count: int, run_tag: int, preflight_rows: int) -> InboxCheck:
    from django.db import connections
    from django.db.models import Count

    from connector.models import WebhookEvent

    rows = wait_until_quiet(lambda: WebhookEvent.objects.count())
    per_batch: collections.Counter[int] = collections.Counter()
    foreign = 0
    for resource_id in WebhookEvent.objects.values_list("resource_id", flat=True).iterator(chunk_size=5000):
        batch = batch_of(resource_id, run_tag)
        if batch is None:
            foreign += 1
        else:
            per_batch[batch] += 1
    sent = batches_sent(result, thread_count)
    complete = sum(1 for b in sent if per_batch.get(b) == EVENTS_PER_BATCH)
    partial = sum(1 for b in sent if 0 < per_batch.get(b, 0) < EVENTS_PER_BATCH)
    statuses = dict(WebhookEvent.objects.values_list("status").annotate(n=Count("id")).order_by())
    queued = None
    if not os.environ.get("REDIS_URL"):  # the ORM broker: its queue is a table
        from django_q.models import OrmQ

        queued = OrmQ.objects.count()
    connections.close_all()
    acknowledged = result.ok
    return InboxCheck(
        requests_sent=sum(t["sent"] for t in result.threads),
        batches_sent=len(sent),
        batches_acknowledged=acknowledged,
        in_flight_or_refused=max(0, sum(t["sent"] for t in result.threads) - acknowledged),
        inbox_rows=rows - preflight_rows,
        complete_batches=complete,
        partial_batches=partial,
        missing_batches=len(sent) - complete - partial,
        foreign_rows=foreign - preflight_rows,
        statuses=statuses,
        queued_tasks=queued,
    )


# --- Main -------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per target (default 20)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load on the bare view first")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: 2 cores)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (default, embedded, WAL), postgres (database ml_connector_bench at 127.0.0.1) "
        "or a postgres:// URL whose database name contains 'bench' (dropped and created again)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="DATABASE_CONN_MAX_AGE for the run (default: the setting's, 60 s); 0 opens a connection "
        "per request",
    )
    parser.add_argument(
        "--redis",
        nargs="?",
        const=REDIS_DEFAULT,
        default=None,
        help=f"use Redis as django-q2 broker and cache (default URL {REDIS_DEFAULT}; flushed first)",
    )
    parser.add_argument("--with-workers", action="store_true", help="run qcluster so drains run concurrently")
    parser.add_argument("--q-workers", type=int, default=1, help="qcluster worker processes (default 1)")
    parser.add_argument("--rate", type=float, default=0, help="pace the load to about this many requests/s")
    parser.add_argument(
        "--batches", type=int, default=0, help="batches to pre-generate (default: duration x --ceiling)"
    )
    parser.add_argument(
        "--ceiling", type=int, default=1500, help="highest receiver rate planned for (sizes the batch file)"
    )
    parser.add_argument("--targets", default="bare,receiver", help="comma-separated: bare, receiver")
    parser.add_argument("--log-level", default="INFO", help="the connector's LOG_LEVEL in gunicorn (INFO)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (logs, SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    args = parser.parse_args(argv)
    if args.database == "sqlite":
        args.database_url = None
    elif args.database == "postgres":
        args.database_url = POSTGRES_DEFAULT
    elif args.database.startswith(("postgres://", "postgresql://")):
        args.database_url = args.database
    else:
        parser.error("--database is sqlite, postgres or a postgres:// URL")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not set(args.targets) <= {"bare", "receiver"} or not args.targets:
        parser.error("--targets takes bare and/or receiver")
    if args.connections < args.wrk_threads:
        parser.error("--connections must be at least --wrk-threads")
    return args


def print_report(args, results: list[LoadResult], check: InboxCheck | None, setup: dict) -> dict:
    print()
    print(
        f"gunicorn {args.workers} x {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f"; wrk {args.wrk_threads} thread(s), {args.connections} connections"
        + f", {args.duration:g} s per target"
        + (f", paced to ~{args.rate:g}/s" if args.rate else "")
    )
    print(
        f"database {setup['database']}; broker {setup['broker']}; qcluster "
        + (f"running ({args.q_workers} worker(s))" if args.with_workers else "not running (intake only)")
        + f"; {os.cpu_count()} CPUs; batches of {EVENTS_PER_BATCH} events, {setup['body_bytes']} bytes each"
    )
    print()
    header = f"{'target':<10}{'requests/s':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header + f"{'requests':>10}{'non-2xx':>9}{'sock err':>9}{'CPU ms/req':>11}")
    for r in results:
        lat = r.latency_ms
        print(
            f"{r.target:<10}{r.rate:>12.1f}{lat['p50']:>9.1f}{lat['p90']:>9.1f}{lat['p99']:>9.1f}"
            f"{lat['max']:>9.1f}{r.requests:>10}{r.not_ok:>9}{r.socket_errors:>9}{r.cpu_ms_per_request:>11.2f}"
        )
    by_target = {r.target: r for r in results}
    ratio = None
    if "bare" in by_target and "receiver" in by_target and by_target["bare"].rate:
        ratio = by_target["receiver"].rate / by_target["bare"].rate
        print(f"\nratio receiver/bare (requests/s): {ratio:.2f}")
    print(
        "CPU ms/req: CPU time of the gunicorn workers per request (not the database server's); "
        f"{os.cpu_count()} cores ÷ it bounds requests/s"
    )
    if check is not None:
        repeats = check.requests_sent - check.batches_sent
        print(
            f"\ninbox: {check.batches_sent} batches sent ({check.events_sent} events"
            + (f"; {repeats} repeats, no-ops" if repeats > 0 else "")
            + "), "
            f"{check.batches_acknowledged} answered 2xx, {check.inbox_rows} inbox rows "
            f"({check.complete_batches} complete batches, {check.partial_batches} partial, "
            f"{check.missing_batches} missing; {check.in_flight_or_refused} requests in flight or refused)"
        )
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(check.statuses.items()))
        queued = "" if check.queued_tasks is None else f"; drain tasks in the queue: {check.queued_tasks}"
        print(f"inbox statuses: {statuses}{queued}")
        print(f"=> {check.verdict}")
    figures = {
        "config": {
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads if args.worker_class == "gthread" else 1,
            "connections": args.connections,
            "wrk_threads": args.wrk_threads,
            "duration_s": args.duration,
            "rate": args.rate or None,
            "with_workers": args.with_workers,
            "cpus": os.cpu_count(),
            **setup,
        },
        "targets": {
            r.target: {
                "requests_per_s": round(r.rate, 1),
                "latency_ms": r.latency_ms,
                "requests": r.requests,
                "non_2xx": r.not_ok,
                "socket_errors": r.socket_errors,
                "worker_cpu_ms_per_request": round(r.cpu_ms_per_request, 3),
            }
            for r in results
        },
        "ratio": round(ratio, 3) if ratio is not None else None,
        "inbox": None
        if check is None
        else {
            "batches_sent": check.batches_sent,
            "events_sent": check.events_sent,
            "acknowledged": check.batches_acknowledged,
            "inbox_rows": check.inbox_rows,
            "missing_batches": check.missing_batches,
            "partial_batches": check.partial_batches,
            "statuses": check.statuses,
            "verdict": check.verdict,
        },
    }
    return figures


def main(argv=None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    sys.path.insert(0, str(ROOT))
    data_dir = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    closed_port = free_port()  # bound and released: nothing listens there
    env = bench_environment(args, data_dir, closed_port)
    os.environ.clear()
    os.environ.update(env)
    server = qcluster = None
    try:
        if args.database_url:
            recreate_postgres_database(args.database_url)
        if args.redis:
            flush_redis(args.redis)
        print(f"Preparing {data_dir} ...", flush=True)
        fixture = prepare_database(closed_port)
        run_tag = secrets.randbits(63) | 1
        batch_count = args.batches or int(args.duration * args.ceiling)
        body_file = data_dir / "batches.txt"
        size = write_batches(body_file, batch_count, fixture.tenant_id, fixture.webhook_key, run_tag)
        print(f"Wrote {batch_count} signed batches ({size / 1e6:.1f} MB) to {body_file}", flush=True)
        server = start_gunicorn(args, env, data_dir)
        receiver_path = f"/webhooks/xero/{fixture.pair_key}/"
        preflight_rows = 0
        if "receiver" in args.targets:
            # One batch outside the file: the receiver exists and accepts a signed batch.
            body = make_batch(0, fixture.tenant_id, run_tag ^ 2, datetime.now(UTC))
            signature = xero_signature(body, fixture.webhook_key)
            headers = {"Content-Type": "application/json", "x-xero-signature": signature}
            status = post(server.url(receiver_path), body, headers)
            if status == 404:
                raise CannotRun(
                    f"POST {receiver_path} answered 404: is the Xero receiver (connector/intake) there?"
                )
            if status != 200:
                raise CannotRun(f"the receiver answered {status} to a signed batch; see {server.log_path}")
            preflight_rows = EVENTS_PER_BATCH
        if args.with_workers:
            qcluster = start_qcluster(env, data_dir)
            time.sleep(3)  # let the cluster start its workers before the load begins
        if args.warmup:
            run_wrk(wrk, args, "warmup", server, BARE_PATH, body_file, args.warmup)
        results = []
        for target in args.targets:
            path = BARE_PATH if target == "bare" else receiver_path
            print(f"Load on {target} for {args.duration:g} s ...", flush=True)
            results.append(run_wrk(wrk, args, target, server, path, body_file, args.duration))
        check = None
        if "receiver" in args.targets:
            receiver = next(r for r in results if r.target == "receiver")
            check = check_inbox(receiver, args.wrk_threads, run_tag, preflight_rows)
        from django.conf import settings

        setup = {
            "database": ("PostgreSQL" if args.database_url else "SQLite (WAL)")
            + f", CONN_MAX_AGE {settings.DATABASES['default'].get('CONN_MAX_AGE', 0)}",
            "broker": "Redis" if args.redis else "django-q2 ORM",
            "body_bytes": len(body_file.open("rb").readline().split(b"\t", 1)[1]) - 1,
        }
        figures = print_report(args, results, check, setup)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        errors = tail(server.log_path, 5)
        if errors:
            print(f"\nlast lines of {server.log_path}:\n{errors}")
        return 1 if check is not None and check.lost else 0
    except CannotRun as exc:
        print(f"Could not run the benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        stop(qcluster)
        if server is not None:
            stop(server.process)
        if args.keep:
            print(f"Data folder kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
