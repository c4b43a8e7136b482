"""Where the Xero receiver's CPU goes: the receiver and the bare view called in one process, no server.

    .venv/bin/python bench/profile_receiver.py                  # SQLite, 2000 batches per target
    .venv/bin/python bench/profile_receiver.py --database postgres --profile 25

Each request goes through Django's WSGI handler (the product middleware, the URLconf, the view), as
gunicorn would call it, but without the server or the network, so the figures are the application's own
CPU time per request (``time.process_time``; the database server's time is not in it). ``--profile N``
runs the receiver once more under cProfile, prints the N functions with the most own time and the
shares of time spent inside Django REST framework, the ORM/database driver and the JSON codec.
Like ``webhook_intake.py``, this prints figures and asserts nothing.
"""

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook_intake import (  # noqa: E402
    BARE_PATH,
    EVENTS_PER_BATCH,
    POSTGRES_DEFAULT,
    bench_environment,
    free_port,
    make_batch,
    prepare_database,
    recreate_postgres_database,
    xero_signature,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batches", type=int, default=2000, help="requests per target (default 2000)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    args = parser.parse_args(argv)
    args.database_url = POSTGRES_DEFAULT if args.database == "postgres" else None
    return args


def environ(path: str, body: bytes, signature: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_XERO_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def run(handler, requests: list[tuple[str, bytes, str]]) -> float:
    """CPU milliseconds per request; every answer must be a 200."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    started = time.process_time()
    for path, body, signature in requests:
        for _ in handler(environ(path, body, signature), start_response):
            pass
    spent = time.process_time() - started
    refused = [status for status in statuses if not status.startswith("200")]
    if refused:
        raise SystemExit(f"{len(refused)} requests were refused, e.g. {refused[0]}")
    return spent * 1000 / len(requests)


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Own time per library, as a share of the profiled total."""
    groups = {"rest_framework": 0.0, "django/db + driver": 0.0, "json": 0.0, "encrypted fields": 0.0}
    total = 0.0
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():
        total += own
        if "rest_framework" in filename:
            groups["rest_framework"] += own
        elif "django/db" in filename or "sqlite3" in filename or "psycopg" in filename:
            groups["django/db + driver"] += own
        elif "/json/" in filename:
            groups["json"] += own
        elif "encrypted_model_fields" in filename or "cryptography" in filename or "fernet" in filename:
            groups["encrypted fields"] += own
    return {name: own / total for name, own in groups.items()} if total else groups


def main(argv=None) -> int:
    args = parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    options = SimpleNamespace(
        log_level="WARNING", q_workers=1, database_url=args.database_url, conn_max_age=None, redis=None
    )
    env = bench_environment(options, data_dir, free_port())
    os.environ.clear()
    os.environ.update(env)
    try:
        if args.database_url:
            recreate_postgres_database(args.database_url)
        fixture = prepare_database(free_port())
        from django.core.handlers.wsgi import WSGIHandler
        from django.db import connection

        from connector.models import WebhookEvent

        handler = WSGIHandler()
        start = datetime.now(UTC)
        receiver_path = f"/webhooks/xero/{fixture.pair_key}/"

        def batches(tag: int, count: int):
            for number in range(count):
                body = make_batch(number, fixture.tenant_id, tag, start)
                yield receiver_path, body, xero_signature(body, fixture.webhook_key)

        warmup = list(batches(1, 50))
        run(handler, warmup)
        run(handler, [(BARE_PATH, body, signature) for _, body, signature in warmup])
        receiver = list(batches(3, args.batches))
        bare_ms = run(handler, [(BARE_PATH, body, signature) for _, body, signature in receiver])
        receiver_ms = run(handler, receiver)
        stored = WebhookEvent.objects.count()
        expected = (len(warmup) + len(receiver)) * EVENTS_PER_BATCH
        print(f"database {connection.vendor}; {args.batches} requests per target, one process, no server")
        print(f"bare view      {bare_ms:.3f} ms CPU/request")
        print(f"Xero receiver  {receiver_ms:.3f} ms CPU/batch of {EVENTS_PER_BATCH} events")
        print(f"inbox rows {stored} (expected {expected})")
        if args.profile:
            profiler = cProfile.Profile()
            profiled = list(batches(5, args.batches))
            profiler.enable()
            run(handler, profiled)
            profiler.disable()
            stats = pstats.Stats(profiler)
            print("\nown-time shares under cProfile (which inflates small calls):")
            for name, share in shares(stats).items():
                print(f"  {name:<20} {share:6.1%}")
            print()
            stats.sort_stats("tottime").print_stats(args.profile)
        return 0 if stored == expected else 1
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
