"""Backfill benchmark: N contacts and M invoices from the sandbox Xero into the sandbox Pipedrive.

The sandbox runs as its own process (gunicorn, as ``scripts/sandbox.sh`` does) with its real limits in
scaled time (``SANDBOX_TIME_SCALE``: Xero 60 a minute and 5,000 a day per tenant, Pipedrive 20 calls
per 2 seconds per token and the company's daily token budget, every window shortened by the scale);
the connector's own limiters use the same scaled windows. Each case runs in a fresh process (so peak
memory is its own): migrate a fresh database, seed the sandbox with bulk inserts, preview, run.

Printed (and written as JSON with ``--json``): records per minute against the ceiling the binding limit
allows (goal ≥ 90 %), Xero calls per 1,000 records (goal ≤ 2 for contacts), Pipedrive tokens per created
record (goal ≤ 11 for a contact with one person), 429s received (goal 0 from Xero), peak memory with
the small and the large number of contacts (goal: within 20 %).

    .venv/bin/python bench/backfill.py                       # 10,000 + 20,000, SQLite then PostgreSQL
    .venv/bin/python bench/backfill.py --databases sqlite --contacts 1000 --invoices 2000 --json out.json

PostgreSQL: ``--postgres postgres://postgres@127.0.0.1:5432`` (databases ``ml_bench_backfill_*`` are
created and dropped) and ``--redis redis://127.0.0.1:6379/3``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"ceiling_share": 0.90, "xero_calls_per_1000_contacts": 2, "tokens_per_contact": 11, "xero_429s": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- one case, in its own process ------------------------------------------------------------------


def _seed_in_a_child(seed) -> None:
    """Run the bulk seeding in a forked child, so that its memory (tens of MiB for 20,000 invoices,
    growing with the size) is not in this process's peak, which is the backfill's own."""
    from django.db import connections

    connections.close_all()
    pid = os.fork()
    if pid == 0:  # the child: seed, then leave without running the parent's clean-up
        code = 1
        try:
            seed()
            connections.close_all()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("seeding the sandbox failed (see the child's traceback above)")


def _wait_for(url: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"the sandbox did not answer at {url}")


def run_case(args) -> dict:
    """Runs inside the case's process: environment already set by the parent."""
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    scale = float(settings.SANDBOX_TIME_SCALE)
    port = free_port()
    base = f"http://127.0.0.1:{port}/sandbox"
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
        "-w", str(args.sandbox_workers), "--threads", "4", "--log-level", "warning",
        "-c", str(ROOT / "bench" / "backfill_gunicorn.py"),
    ]  # fmt: skip
    gunicorn = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
    try:
        _wait_for(f"{base}/xero/api/connections")
        return _measure(args, settings, base, scale)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)


def _measure(args, settings, base: str, scale: float) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from connector.models import BackfillRun, ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection
    from connector.operations import backfill
    from sandbox import counters
    from sandbox.pipedrive import services as pd_services
    from sandbox.pipedrive.models import Pipeline, Stage
    from sandbox.xero import identity
    from sandbox.xero import services as xero_services
    from tests.connector.operations.backfill_seed import seed_contacts, seed_invoices

    settings.XERO_API_URL = f"{base}/xero/api/api.xro/2.0"
    settings.XERO_IDENTITY_URL = f"{base}/xero/identity"
    settings.PIPEDRIVE_API_URL = f"{base}/pipedrive"
    settings.XERO_MINUTE_SECONDS = 60 / scale  # the connector's windows shortened like the sandbox's
    settings.PIPEDRIVE_BURST_SECONDS = 2 / scale
    settings.BACKFILL_SLICE_SECONDS = 10**6

    organisation = xero_services.create_organisation("Bench Backfill Ltd")
    app = xero_services.create_app("Bench connector", ["https://bench.example/cb/"])
    grant = xero_services.connect(
        app, [organisation], "offline_access accounting.contacts accounting.transactions"
    )
    xero = XeroConnection.objects.create(
        tenant_id=str(organisation.tenant_id), tenant_name=organisation.name, client_id=app.client_id,
        client_secret=app.client_secret, access_token=identity._access_token(grant).token,
        refresh_token=identity._refresh_token(grant).token, expires_at=timezone.now() + timedelta(minutes=25),
        status=ConnectionStatus.ACTIVE, secrets_set_at=timezone.now(),
    )  # fmt: skip
    company = pd_services.ensure_demo_company()
    company.daily_budget_override = args.daily_tokens  # a company whose plan and seats allow this much
    company.save(update_fields=["daily_budget_override"])
    settings.PIPEDRIVE_DAILY_TOKENS = args.daily_tokens
    pipedrive = PipedriveConnection.objects.create(
        company_id=company.id, company_name=company.name, company_domain=company.domain,
        api_domain=f"{base}/pipedrive", auth_type=PipedriveConnection.AuthType.API_TOKEN,
        api_token=pd_services.DEMO_API_TOKEN, status=ConnectionStatus.ACTIVE,
    )  # fmt: skip
    pair = SyncPair.objects.create(name="Bench pair", xero_connection=xero, pipedrive_connection=pipedrive)
    now = timezone.now()
    pipeline = Pipeline.objects.create(
        company=company, name="Xero invoices", order_nr=9, add_time=now, update_time=now
    )
    for number, name in enumerate(
        ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"], start=1
    ):
        Stage.objects.create(pipeline=pipeline, name=name, order_nr=number, add_time=now, update_time=now)
    _seed_in_a_child(
        lambda: seed_invoices(
            organisation, seed_contacts(organisation, args.contacts, person_every=1), args.invoices
        )
    )
    counters.reset()

    phase_times: dict[str, float] = {}
    phase_memory: dict[str, int] = {}
    phase_xero: dict[str, int] = {}
    original_pages = backfill.BackfillWorker.pages

    def timed_pages(self, phase):
        started = time.monotonic()
        calls = self.run.xero_calls + self.meter.xero_calls
        try:
            return original_pages(self, phase)
        finally:
            phase_times[str(phase)] = time.monotonic() - started
            phase_xero[str(phase)] = self.run.xero_calls + self.meter.xero_calls - calls
            phase_memory[str(phase)] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, peak so far

    backfill.BackfillWorker.pages = timed_pages
    started = time.monotonic()
    run = backfill.start_preview(pair)
    run = backfill.run_preview(run.pk)
    preview_seconds = time.monotonic() - started
    plan = run.plan
    preview_xero = run.xero_calls
    preview_tokens = run.pipedrive_tokens
    BackfillRun.objects.filter(pk=run.pk).update(xero_calls=0, pipedrive_calls=0, pipedrive_tokens=0)
    BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.QUEUED)
    counters.reset()
    started = time.monotonic()
    for _ in range(100):
        backfill.run_backfill(run.pk)
        run = BackfillRun.objects.get(pk=run.pk)
        if run.status != BackfillRun.Status.QUEUED:
            break
    seconds = time.monotonic() - started
    xero_counts = counters.snapshot("xero", str(organisation.tenant_id))
    pipedrive_counts = counters.snapshot("pipedrive", str(company.id))

    def status_count(snapshot, status):
        return sum(int(s.get(status, 0) or s.get(str(status), 0)) for s in snapshot["by_endpoint"].values())

    return {
        "contacts": args.contacts,
        "invoices": args.invoices,
        "status": run.status,
        "message": run.state_message,
        "seconds": round(seconds, 1),
        "preview_seconds": round(preview_seconds, 1),
        "preview_xero_calls": preview_xero,
        "preview_pipedrive_tokens": preview_tokens,
        "phase_seconds": {k: round(v, 1) for k, v in phase_times.items()},
        "phase_xero_calls": phase_xero,
        "peak_rss_kib_after_phase": phase_memory,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "counts": run.counts,
        "created": run.created_records,
        "xero_calls": run.xero_calls,
        "pipedrive_calls": run.pipedrive_calls,
        "pipedrive_tokens": run.pipedrive_tokens,
        "xero_429s": status_count(xero_counts, 429),
        "pipedrive_429s": status_count(pipedrive_counts, 429),
        "plan": {k: plan[k] for k in ("organizations", "persons", "deals")},
        "scale": scale,
        "burst_limit": int(settings.PIPEDRIVE_BURST_LIMIT),
        "xero_minute_limit": int(settings.XERO_MINUTE_LIMIT),
        "daily_tokens": args.daily_tokens,
    }


# --- the figures ----------------------------------------------------------------------------------


def figures(case: dict) -> dict:
    """Rates against the ceiling of the binding limit, per phase and overall."""
    scale = case["scale"]
    burst_calls_per_min = case["burst_limit"] / (2 / scale) * 60
    xero_calls_per_min = case["xero_minute_limit"] * scale
    day_minutes = 1440 / scale
    tokens_per_min = case["daily_tokens"] / day_minutes
    contacts_s = case["phase_seconds"].get("contacts", 0) or 1e-9
    invoices_s = case["phase_seconds"].get("invoices", 0) or 1e-9
    created = case["created"]
    contact_calls = created.get("organization", 0) + created.get("person", 0)
    calls_per_contact = contact_calls / max(1, case["contacts"])
    records = case["contacts"] + case["invoices"]
    minutes = (contacts_s + invoices_s) / 60
    calls_per_record = case["pipedrive_calls"] / max(1, records)
    ceilings = {
        "Pipedrive burst": burst_calls_per_min / max(calls_per_record, 1e-9),
        "Pipedrive daily budget": tokens_per_min / max(case["pipedrive_tokens"] / max(1, records), 1e-9),
        "Xero minute": xero_calls_per_min / max(case["xero_calls"] / max(1, records), 1e-9),
    }
    binding = min(ceilings, key=ceilings.get)
    rate = records / minutes
    contact_tokens = 5 * contact_calls  # creates: organizations and persons
    index_tokens = 10 * (1 + case["contacts"] // 500)
    return {
        "records_per_minute": round(rate),
        "ceiling_per_minute": round(ceilings[binding]),
        "binding_limit": binding,
        "ceiling_share": round(rate / ceilings[binding], 3),
        "contacts_per_minute": round(case["contacts"] / (contacts_s / 60)),
        "invoices_per_minute": round(case["invoices"] / (invoices_s / 60)),
        "calls_per_contact": round(calls_per_contact, 2),
        "xero_calls_per_1000_records": round(1000 * case["xero_calls"] / max(1, records), 2),
        "xero_calls_per_1000_contacts": round(
            1000 * case["phase_xero_calls"].get("contacts", 0) / max(1, case["contacts"]), 2
        ),
        "tokens_per_contact": round((contact_tokens + index_tokens) / max(1, case["contacts"]), 2),
        "tokens_per_created_record": round(case["pipedrive_tokens"] / max(1, sum(created.values())), 2),
        "xero_429s": case["xero_429s"],
        "pipedrive_429s": case["pipedrive_429s"],
        "peak_rss_mib": round(
            case["peak_rss_kib_after_phase"].get("contacts", case["peak_rss_kib"]) / 1024, 1
        ),
    }


def spawn(args, database: str, contacts: int, invoices: int, workdir: Path) -> dict:
    env = os.environ.copy()
    data = workdir / f"{database}-{contacts}"
    data.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "1",
            "SANDBOX_ENABLED": "1",
            "SANDBOX_WEBHOOK_AUTODELIVER": "0",
            "SANDBOX_TIME_SCALE": str(args.scale),
            "CONNECTOR_DATA_DIR": str(data),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    dbname = None
    if database == "postgres":
        dbname = f"ml_bench_backfill_{os.getpid()}_{contacts}"
        _pg(args.postgres, f'CREATE DATABASE "{dbname}"')
        env["DATABASE_URL"] = f"{args.postgres.rstrip('/')}/{dbname}"
        env["REDIS_URL"] = args.redis
    else:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    out = data / "result.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--case", str(out),
        "--contacts", str(contacts), "--invoices", str(invoices),
        "--daily-tokens", str(args.daily_tokens), "--sandbox-workers", str(args.sandbox_workers),
    ]  # fmt: skip
    try:
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        case = json.loads(out.read_text())
    finally:
        if dbname:
            _pg(args.postgres, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    case["database"] = "PostgreSQL + Redis" if database == "postgres" else "SQLite + ORM broker"
    case["figures"] = figures(case)
    return case


def _pg(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def table(cases: list[dict]) -> str:
    rows = [
        ("records / minute (ceiling of the binding limit)", "≥ 90 % of ceiling",
         lambda c: f"{c['figures']['records_per_minute']} / {c['figures']['ceiling_per_minute']} "
                   f"({100 * c['figures']['ceiling_share']:.0f} %, {c['figures']['binding_limit']})"),
        ("contacts / minute, invoices / minute", "",
         lambda c: f"{c['figures']['contacts_per_minute']}, {c['figures']['invoices_per_minute']}"),
        ("Xero calls per 1,000 contacts", "≤ 2", lambda c: str(c["figures"]["xero_calls_per_1000_contacts"])),
        ("Xero calls per 1,000 records", "", lambda c: str(c["figures"]["xero_calls_per_1000_records"])),
        ("Pipedrive tokens per contact (one person)", "≤ 11",
         lambda c: str(c["figures"]["tokens_per_contact"])),
        ("Pipedrive tokens per created record", "", lambda c: str(c["figures"]["tokens_per_created_record"])),
        ("429s from Xero / Pipedrive", "0 from Xero",
         lambda c: f"{c['figures']['xero_429s']} / {c['figures']['pipedrive_429s']}"),
        ("peak memory after the contacts (MiB)", "within 20 %", lambda c: str(c["figures"]["peak_rss_mib"])),
        ("run time (s) / status", "", lambda c: f"{c['seconds']} / {c['status']}"),
    ]  # fmt: skip
    header = ["figure", "goal"] + [f"{c['database']}, {c['contacts']}+{c['invoices']}" for c in cases]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for label, goal, value in rows:
        lines.append(" | ".join([label, goal] + [value(c) for c in cases]))
    return "\n".join(lines)


def memory_verdicts(cases: list[dict]) -> list[str]:
    verdicts = []
    for database in {c["database"] for c in cases}:
        sizes = sorted((c for c in cases if c["database"] == database), key=lambda c: c["contacts"])
        if len(sizes) >= 2:
            small, large = sizes[0]["figures"]["peak_rss_mib"], sizes[-1]["figures"]["peak_rss_mib"]
            growth = (large - small) / small
            verdicts.append(
                f"{database}: peak memory {small} MiB at {sizes[0]['contacts']} contacts, {large} MiB at "
                f"{sizes[-1]['contacts']}: {100 * growth:+.0f} % (goal within 20 %)"
            )
    return verdicts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument(
        "--small-contacts", type=int, default=1_000, help="The case peak memory is compared to."
    )
    parser.add_argument("--small-invoices", type=int, default=2_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/3"))
    parser.add_argument(
        "--scale", type=float, default=60, help="SANDBOX_TIME_SCALE (60: a minute lasts 1 s)."
    )
    parser.add_argument(
        "--daily-tokens", type=int, default=2_000_000, help="The company's daily token budget."
    )
    parser.add_argument("--sandbox-workers", type=int, default=2)
    parser.add_argument("--json", help="Write every figure to this file.")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, write its result here
    args = parser.parse_args(argv)
    if args.case:
        result = run_case(args)
        Path(args.case).write_text(json.dumps(result))
        return result
    workdir = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    cases = []
    try:
        for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
            for contacts, invoices in (
                (args.small_contacts, args.small_invoices),
                (args.contacts, args.invoices),
            ):
                print(f"… {database}: {contacts} contacts, {invoices} invoices", flush=True)
                cases.append(spawn(args, database, contacts, invoices, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(cases))
    for verdict in memory_verdicts(cases):
        print(verdict)
    report = {"goals": GOALS, "cases": cases, "memory": memory_verdicts(cases)}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
