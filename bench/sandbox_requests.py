"""The sandbox's own cost per request, for the calls a backfill makes (no connector involved).

Drives the emulators in-process through Django's WSGI handler (the test ``Client``: URL routing,
middleware, the guards, the views; no network), on a fresh database, and prints for each kind of call
requests per second, milliseconds per request and SQL statements per request (transaction control
left out):

- Pipedrive: ``POST /api/v2/organizations``, ``/persons``, ``/deals``, ``PATCH /deals/{id}``, and the
  list pages of 500 organizations and persons the connector reads to build its index;
- Xero: ``GET /Contacts`` and ``GET /Invoices`` pages of 1,000 (as the backfill asks for them), and
  ``GET /Contacts?IDs=`` batches of 100 (as a webhook sync asks).

Every call goes through the real pipeline: authentication, fault switches, the rolling burst and minute
windows, the daily token budget and write count, the call counters and concurrency gauge, and, for
Pipedrive writes, one outgoing webhook per matching subscription (``--pipedrive-webhooks``, three by
default: organization, person and deal, as a connected pair registers them). The limits are the real
ones except Xero's minute limit, raised so a fast machine is not refused (its window is still spent).

    .venv/bin/python bench/sandbox_requests.py                        # SQLite, 200 writes per kind
    .venv/bin/python bench/sandbox_requests.py --postgres postgres://postgres@127.0.0.1:5432/ml_bench_sandbox
    .venv/bin/python bench/sandbox_requests.py --only pd-post-org --profile   # cProfile of one kind

``--postgres`` names a database that is dropped and created afresh. Timings are wall-clock on whatever
else the machine is doing; queries per request do not depend on the load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PD = "/sandbox/pipedrive/api"
TRANSACTION_CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "COMMIT")
XERO_API = "/sandbox/xero/api/api.xro/2.0"


def _configure(args) -> None:
    from cryptography.fernet import Fernet

    data = Path(tempfile.mkdtemp(prefix="bench-sandbox-requests-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "1" if args.debug else "0",
            "SECRET_KEY": "bench-sandbox-requests-not-a-secret-" + "0" * 20,
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SANDBOX_ENABLED": "1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
            "SANDBOX_WEBHOOK_AUTODELIVER": "0",
            "SANDBOX_TIME_SCALE": str(args.scale),
            "CONNECTOR_DATA_DIR": str(data),
            "LOG_LEVEL": "WARNING",
        }
    )
    if args.postgres:
        import psycopg

        base, _, name = args.postgres.rstrip("/").rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = args.postgres
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class World:
    """What the calls need: a connected Xero organisation with records, the demo Pipedrive company."""

    def __init__(self, args):
        import datetime as dt

        from django.test import Client

        from sandbox.pipedrive import services as pd_services
        from sandbox.pipedrive.models import CustomField, Entity, Pipeline, Stage, User, Webhook
        from sandbox.xero import services as xero_services
        from tests.connector.operations.backfill_seed import seed_contacts, seed_invoices

        organisation = xero_services.create_organisation("Bench Requests Ltd")
        app = xero_services.create_app("Bench connector", ["https://bench.example/cb/"])
        app.minute_limit = app.app_minute_limit = 10**6
        app.save(update_fields=["minute_limit", "app_minute_limit"])
        grant = xero_services.connect(
            app, [organisation], "offline_access accounting.contacts accounting.transactions"
        )
        self.xero_grant = grant
        self.xero_headers = {
            "HTTP_XERO_TENANT_ID": str(organisation.tenant_id),
            "HTTP_ACCEPT": "application/json",
        }
        contacts = seed_contacts(organisation, args.contacts, person_every=1)
        seed_invoices(organisation, contacts, args.invoices, paid_every=10)
        self.contact_ids = [str(c.contact_id) for c in contacts]

        company = pd_services.ensure_demo_company()
        admin = User.objects.get(api_token=pd_services.DEMO_API_TOKEN)
        now = dt.datetime.now(dt.UTC)
        pipeline = Pipeline.objects.create(
            company=company, name="Xero invoices", order_nr=9, add_time=now, update_time=now
        )
        self.stage_ids = [
            Stage.objects.create(pipeline=pipeline, name=name, order_nr=n, add_time=now, update_time=now).id
            for n, name in enumerate(["Draft", "Awaiting payment", "Paid"], start=1)
        ]
        self.fields = {}
        for entity in (Entity.ORGANIZATION, Entity.PERSON, Entity.DEAL):
            field = CustomField.objects.create(
                company=company,
                entity=entity,
                field_code=f"{entity[:3]}{'0' * 37}",
                field_name="Xero ID",
                field_type="varchar",
                add_time=now,
            )
            self.fields[entity] = field.field_code
        for event_object in ("organization", "person", "deal")[: args.pipedrive_webhooks]:
            Webhook.objects.create(
                company=company,
                user=admin,
                name="ml-connector: bench",
                subscription_url="https://connector.example/webhooks/pipedrive/key/",
                event_action="*",
                event_object=event_object,
                version="2.0",
                http_auth_user="user",
                http_auth_password="password",  # noqa: S106 (a made-up receiver's login)
                add_time=now,
            )
        self.pd_headers = {"HTTP_X_API_TOKEN": pd_services.DEMO_API_TOKEN}
        self.client = Client(SERVER_NAME="127.0.0.1")
        self.org_ids: list[int] = []
        self.person_ids: list[int] = []
        self.deal_ids: list[int] = []
        self.counter = 0

    # --- one call of each kind ---------------------------------------------------------------

    def _pd(self, method: str, path: str, body=None, params=None):
        call = getattr(self.client, method)
        if body is None:
            return call(f"{PD}{path}", params or {}, **self.pd_headers)
        return call(f"{PD}{path}", json.dumps(body), content_type="application/json", **self.pd_headers)

    def pd_post_org(self):
        self.counter += 1
        body = {
            "name": f"Customer {self.counter:06d} Limited",
            "custom_fields": {self.fields["organization"]: "x"},
        }
        response = self._pd("post", "/v2/organizations", body)
        self.org_ids.append(response.json()["data"]["id"]) if response.status_code == 200 else None
        return response

    def pd_post_person(self):
        self.counter += 1
        body = {
            "name": f"Ann Lee {self.counter}",
            "emails": [{"value": f"ann.{self.counter}@customer.example", "primary": True, "label": "work"}],
            "org_id": self.org_ids[self.counter % len(self.org_ids)] if self.org_ids else None,
            "custom_fields": {self.fields["person"]: "x"},
        }
        response = self._pd("post", "/v2/persons", body)
        self.person_ids.append(response.json()["data"]["id"]) if response.status_code == 200 else None
        return response

    def pd_post_deal(self):
        self.counter += 1
        body = {
            "title": f"INV-{self.counter:06d}",
            "value": 100.0,
            "currency": "NZD",
            "stage_id": self.stage_ids[0],
            "org_id": self.org_ids[self.counter % len(self.org_ids)] if self.org_ids else None,
            "person_id": self.person_ids[self.counter % len(self.person_ids)] if self.person_ids else None,
            "custom_fields": {self.fields["deal"]: "x"},
        }
        response = self._pd("post", "/v2/deals", body)
        self.deal_ids.append(response.json()["data"]["id"]) if response.status_code == 200 else None
        return response

    def pd_patch_deal(self):
        self.counter += 1
        deal_id = self.deal_ids[self.counter % len(self.deal_ids)]
        body = {"stage_id": self.stage_ids[self.counter % 3], "value": float(self.counter % 500)}
        return self._pd("patch", f"/v2/deals/{deal_id}", body)

    def _pd_pages(self, entity: str):
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            response = self._pd("get", f"/v2/{entity}", params=params)
            yield response
            cursor = (response.json().get("additional_data") or {}).get("next_cursor")
            if response.status_code != 200 or not cursor:
                return

    def fresh_xero_token(self):
        """A new access token, kept alive for the run (they last 30 sandbox minutes: 30 s at scale 60)."""
        import datetime as dt

        from sandbox import clock
        from sandbox.xero import identity
        from sandbox.xero.models import Token

        token = identity._access_token(self.xero_grant)
        Token.objects.filter(pk=token.pk).update(expires_at=clock.now() + dt.timedelta(days=1))
        self.xero_headers["HTTP_AUTHORIZATION"] = f"Bearer {token.token}"

    def _xero(self, path: str, params: dict):
        return self.client.get(f"{XERO_API}{path}", params, **self.xero_headers)

    def _xero_pages(self, resource: str, params: dict):
        number = 1
        while True:
            response = self._xero(f"/{resource}", {**params, "page": number, "pageSize": 1000})
            yield response
            if response.status_code != 200 or number >= response.json()["pagination"]["pageCount"]:
                return
            number += 1

    def xero_ids_batch(self):
        self.counter += 1
        start = (self.counter * 100) % max(1, len(self.contact_ids) - 100)
        return self._xero("/Contacts", {"IDs": ",".join(self.contact_ids[start : start + 100])})


def scenarios(world: World, writes: int, passes: int) -> dict:
    """Kind of call -> a function making one batch of calls, yielding each response."""

    def repeat(fn, times):
        def run():
            for _ in range(times):
                yield fn()

        return run

    def pages(make, times):
        def run():
            for _ in range(times):
                yield from make()

        return run

    return {
        "pd-post-org": repeat(world.pd_post_org, writes),
        "pd-post-person": repeat(world.pd_post_person, writes),
        "pd-post-deal": repeat(world.pd_post_deal, writes),
        "pd-patch-deal": repeat(world.pd_patch_deal, writes),
        "pd-list-orgs-500": pages(lambda: world._pd_pages("organizations"), passes),
        "pd-list-persons-500": pages(lambda: world._pd_pages("persons"), passes),
        "xero-contacts-1000": pages(
            lambda: world._xero_pages("Contacts", {"order": "ContactID", "includeArchived": "true"}), passes
        ),
        "xero-invoices-1000": pages(
            lambda: world._xero_pages("Invoices", {"order": "InvoiceID", "where": 'Type=="ACCREC"'}), passes
        ),
        "xero-contacts-ids-100": repeat(world.xero_ids_batch, max(10, writes // 10)),
    }


def measure(name: str, run, profile: bool, show_queries: bool = False) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Timed without query capture (which has a cost of its own), then counted on a second batch.
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    durations, statuses = [], {}
    started = time.perf_counter()
    last = started
    for response in run():
        now = time.perf_counter()
        durations.append(now - last)
        last = now
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    seconds = time.perf_counter() - started
    if profiler:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    with CaptureQueriesContext(connection) as captured:
        counted = sum(1 for _ in run())
    queries = captured.captured_queries
    # Transaction control (BEGIN, SAVEPOINT, RELEASE, COMMIT) is captured on SQLite only: left out.
    statements = [q for q in queries if not q["sql"].startswith(TRANSACTION_CONTROL)]
    if show_queries:
        for query in queries[: len(queries) // max(1, counted)]:
            print("   ", query["sql"][:300])
    return {
        "kind": name,
        "requests": len(durations),
        "requests_per_s": round(len(durations) / seconds, 1),
        "ms_mean": round(1000 * seconds / max(1, len(durations)), 2),
        "ms_p50": round(1000 * statistics.median(durations), 2),
        "queries_per_request": round(len(statements) / max(1, counted), 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="postgres://…/<database> (dropped and created afresh)")
    parser.add_argument("--writes", type=int, default=200, help="Calls per kind of Pipedrive write.")
    parser.add_argument("--passes", type=int, default=2, help="Times each list is paged through.")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--invoices", type=int, default=4000)
    parser.add_argument("--pipedrive-webhooks", type=int, default=3, choices=range(4))
    parser.add_argument("--scale", type=float, default=60, help="SANDBOX_TIME_SCALE, as bench/backfill.py")
    parser.add_argument("--debug", action="store_true", help="DJANGO_DEBUG on (as bench/backfill.py runs it)")
    parser.add_argument("--only", help="Comma-separated kinds to run (default: all)")
    parser.add_argument("--profile", action="store_true", help="cProfile each kind's timed batch")
    parser.add_argument("--show-queries", action="store_true", help="Print one request's SQL per kind")
    parser.add_argument("--json", help="Write the figures to this file.")
    args = parser.parse_args(argv)
    _configure(args)
    from django.db import connection

    world = World(args)
    kinds = scenarios(world, args.writes, args.passes)
    wanted = [k.strip() for k in args.only.split(",")] if args.only else list(kinds)
    if any(k in wanted for k in ("pd-post-person", "pd-post-deal", "pd-patch-deal")):
        for _ in range(20):  # records for persons and deals to point at
            for make in (world.pd_post_org, world.pd_post_person, world.pd_post_deal):
                response = make()
                if response.status_code != 200:
                    raise SystemExit(f"set-up refused: {response.status_code} {response.content[:300]!r}")
    results = []
    logging.getLogger("django.request").setLevel(logging.ERROR)  # no line per refused call
    for name in wanted:
        world.fresh_xero_token()
        result = measure(name, kinds[name], args.profile, args.show_queries)
        results.append(result)
        print(
            f"{name:24s} {result['requests']:5d} req  {result['requests_per_s']:8.1f} req/s  "
            f"{result['ms_mean']:8.2f} ms/req (p50 {result['ms_p50']:7.2f})  "
            f"{result['queries_per_request']:6.1f} queries/req  statuses {result['statuses']}",
            flush=True,
        )
    database = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"({database}, DEBUG {'on' if args.debug else 'off'}, load average {os.getloadavg()[0]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"database": database, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
