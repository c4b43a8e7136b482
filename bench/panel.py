"""The Pipedrive JSON panel's cost per view: milliseconds (p50, p95, max) and SQL statements per request.

Drives ``GET /pipedrive/panel/<pair key>/`` in-process through Django's WSGI handler (the test
``Client``: routing, middleware, the JWT check, the view; no network) on a fresh database holding one
customer with ``--invoices`` invoices (default 50: a third overdue, a third not yet due, a third paid),
its organization and deal links and a credit limit; each request carries a freshly signed token, as
Pipedrive sends. The goal is well under 100 ms per view.

    .venv/bin/python bench/panel.py                       # SQLite, 1,000 organization + 1,000 deal views
    .venv/bin/python bench/panel.py --postgres postgres://postgres@127.0.0.1:5432/ml_panel_bench

``--postgres`` names a database that is dropped and created afresh (its name must contain "bench").
Timings are wall-clock on whatever else the machine is doing; queries per request do not depend on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-panel-jwt-secret-not-a-secret-000000"  # noqa: S105 (the benchmark's own)


def configure(args) -> None:
    from cryptography.fernet import Fernet

    data = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": "bench-panel-not-a-secret-" + "0" * 30,
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SANDBOX_ENABLED": "0",
            "SECURE_SSL_REDIRECT": "0",
            "CONNECTOR_DATA_DIR": str(data),
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver",
        }
    )
    if args.postgres:
        import psycopg

        name = args.postgres.rsplit("/", 1)[-1]
        if "bench" not in name:
            sys.exit("--postgres: the database's name must contain 'bench' (it is dropped)")
        with psycopg.connect(args.postgres.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = args.postgres
    else:
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(invoices: int):
    from django.utils import timezone

    from connector.models import (
        ConnectionStatus,
        KnownContact,
        KnownInvoice,
        PipedriveConnection,
        SyncPair,
        XeroConnection,
    )
    from mapping.models import CreditLimit, RecordLink

    xero = XeroConnection.objects.create(tenant_id="t-1", client_id="c", status=ConnectionStatus.ACTIVE)
    pipedrive = PipedriveConnection.objects.create(
        company_id=1, auth_type="api_token", api_token="x" * 40, status=ConnectionStatus.ACTIVE
    )
    pair = SyncPair.objects.create(
        name="Bench", xero_connection=xero, pipedrive_connection=pipedrive, pipedrive_panel_secret=SECRET
    )
    contact = "c0ffee00-0000-0000-0000-000000000001"
    RecordLink.objects.create(
        pair=pair, xero_type="contact", xero_id=contact, pipedrive_type="organization", pipedrive_id=1
    )
    KnownContact.objects.create(
        pair=pair, contact_id=contact, name="Bench Ltd", outstanding=Decimal("5000"), read_at=timezone.now()
    )
    CreditLimit.objects.create(pair=pair, contact_id=contact, amount=Decimal("10000"), currency="NZD")
    today = timezone.localdate()
    rows = []
    for n in range(invoices):
        status = "PAID" if n % 3 == 2 else "AUTHORISED"
        due = today + dt.timedelta(days=(n % 3) * 20 - 15)
        rows.append(
            KnownInvoice(
                pair=pair,
                invoice_id=f"1nv01ce0-0000-0000-0000-{n:012d}",
                contact_id=contact,
                number=f"INV-{n:04d}",
                status=status,
                currency="NZD",
                total=Decimal("100"),
                amount_due=Decimal(0) if status == "PAID" else Decimal("100"),
                issued_on=due - dt.timedelta(days=30),
                due_on=due,
                fully_paid_on=due if status == "PAID" else None,
                read_at=timezone.now(),
            )
        )
    KnownInvoice.objects.bulk_create(rows)
    RecordLink.objects.create(
        pair=pair, xero_type="invoice", xero_id=rows[0].invoice_id, pipedrive_type="deal", pipedrive_id=1
    )
    return pair


def run(pair, resource: str, requests: int) -> tuple[list[float], int]:
    import jwt
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    url = f"/pipedrive/panel/{pair.key}/"
    timings = []
    queries = 0
    for i in range(requests):
        now = int(time.time())
        token = jwt.encode(
            {"userId": 7, "companyId": 1, "iat": now, "exp": now + 300}, SECRET, algorithm="HS256"
        )
        query = {
            "resource": resource,
            "view": "details",
            "userId": "7",
            "companyId": "1",
            "selectedIds": "1",
            "token": token,
        }
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, query)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
        if i == 0:
            queries = len(captured.captured_queries)
    return timings, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    configure(args)
    pair = seed(args.invoices)
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"JSON panel, {database}, one customer with {args.invoices} invoices, {args.requests} views each")
    for resource in ("organization", "deal"):
        timings, queries = run(pair, resource, args.requests)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(
            f"  {resource:<13} p50 {statistics.median(timings):6.2f} ms   p95 {p95:6.2f} ms   "
            f"max {timings[-1]:6.2f} ms   {queries} SQL statements per view"
        )


if __name__ == "__main__":
    main()
