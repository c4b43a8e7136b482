"""API economy: Xero calls and Pipedrive tokens spent per synced record, beside the minimum.

    .venv/bin/python bench/api_economy.py [--records 250] [--database sqlite|postgres]
        [--q-workers 2] [--json economy.json] [--keep]

One run (bench/stack.py: the sandbox as its own service, the connector under gunicorn and a
qcluster of ``--q-workers`` workers, Xero's real limit of 60 calls a minute) writes four bursts
in sandbox Xero, each as fast as the sandbox takes them (every record its own transaction, so
its own webhook event), waits until everything is synced, and reads the sandbox's call
counters (``GET /sandbox/<service>/_counters``) before and after each:

A warm-up first syncs one contact, invoice and payment: a pair's first sync reads what it then keeps
(the Pipedrive index of organizations and persons, custom fields, pipeline stages); those one-time
reads are printed apart and the bursts show the steady state.

1. **new contacts**: ``--records`` contacts, each with one person (name and e-mail);
2. **unchanged contacts**: each of them saved again with no change (Xero sends an UPDATE);
3. **new invoices**: one AUTHORISED invoice per contact (a deal each);
4. **payments**: each invoice paid in full (its deal moves).

Per burst it prints the Xero API calls (reads; token refreshes apart) and the Pipedrive calls,
writes and tokens, per 1,000 records, beside the minimum the batch sizes allow: Xero, one call
per 100 records (the connector's ``IDs=`` batch size) for each endpoint the sync reads, counting
the records of that endpoint's category that had events in the burst (a payment also changes its
invoice, and Xero sends an event for both); Pipedrive,
each record that changed in Pipedrive during the burst (counted in the sandbox) written once at
its ``x-token-cost`` and nothing read. Goals: ≤ 20 Xero calls per 1,000 contact events; ≤ 11
Pipedrive tokens per new contact with one person; 0 Pipedrive writes for an unchanged record;
within 10 % of the minimum overall.

The sandbox's demo Pipedrive company is on the Growth plan (40 requests per 2 s per API token),
so the connector runs with ``PIPEDRIVE_BURST_LIMIT=40``; limits change only the time taken,
not the calls counted. Exit status 0, or 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import CannotRun, Stack, StackConfig  # noqa: E402

XERO_BATCH = 100  # ids per GET /Contacts?IDs= and /Invoices?IDs= (connector/sync/contacts.py, invoices.py)
WRITE_METHODS = ("POST ", "PATCH ", "PUT ", "DELETE ")
PHASES = [
    ("contacts_new", "new contacts (one person each)", "contacts"),
    ("contacts_unchanged", "unchanged contacts (saved again)", "touch"),
    ("invoices_new", "new invoices", "invoices"),
    ("payments", "invoices paid in full", "payments"),
]
GOALS = {
    "xero_calls_per_1000_contacts": 20,
    "pipedrive_tokens_per_new_contact": 11,
    "pipedrive_writes_unchanged": 0,
    "overall_over_minimum": 1.10,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=250, help="records per burst (default 250)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--q-workers", type=int, default=2, help="qcluster workers (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and the logs")
    return parser.parse_args(argv)


ENDPOINT_CATEGORY = {"GET /Contacts": "CONTACT", "GET /Invoices": "INVOICE", "GET /Payments": "PAYMENT"}


def xero_records_with_events(since: str) -> dict[str, int]:
    """Distinct Xero records per category that had events received since ``since`` (the inbox)."""
    from django.db import connections
    from django.db.models import Count

    from connector.models import WebhookEvent

    rows = (
        WebhookEvent.objects.filter(
            source=WebhookEvent.Source.XERO, received_at__gte=datetime.fromisoformat(since)
        )
        .values_list("category")
        .annotate(records=Count("resource_id", distinct=True))
        .order_by()
    )
    counts = dict(rows)
    counts["failed"] = WebhookEvent.objects.filter(
        received_at__gte=datetime.fromisoformat(since), status=WebhookEvent.Status.FAILED
    ).count()
    connections.close_all()
    return counts


def _diff(after: dict, before: dict) -> dict[str, int]:
    """Calls per endpoint (all statuses) between two counter snapshots."""
    counts: dict[str, int] = {}
    for endpoint, statuses in after["by_endpoint"].items():
        earlier = before["by_endpoint"].get(endpoint, {})
        total = sum(statuses.values()) - sum(earlier.values())
        if total:
            counts[endpoint] = total
    return counts


def measure_phase(stack: Stack, key: str, step: str, records: int, prefix: str = "Economy") -> dict:
    xero_before, pipedrive_before = stack.counters("xero"), stack.counters("pipedrive")
    since = datetime.now(UTC).isoformat()
    started = time.monotonic()
    stack.sandbox(step, {"count": records, "prefix": prefix})
    stack.wait_until_quiet()
    took = time.monotonic() - started
    xero_after, pipedrive_after = stack.counters("xero"), stack.counters("pipedrive")
    changed = stack.sandbox("changed", {"since": since})
    events = xero_records_with_events(since)
    xero = _diff(xero_after, xero_before)
    reads = {endpoint: n for endpoint, n in xero.items() if endpoint.startswith("GET ")}
    pipedrive = _diff(pipedrive_after, pipedrive_before)
    writes = sum(n for endpoint, n in pipedrive.items() if endpoint.startswith(WRITE_METHODS))
    tokens = pipedrive_after["tokens"] - pipedrive_before["tokens"]
    minimum_tokens = sum(
        c["created"] * c["create_tokens"] + c["updated"] * c["update_tokens"] for c in changed.values()
    )
    return {
        "records": records,
        "seconds": round(took, 1),
        "xero_calls": sum(reads.values()),
        "xero_calls_by_endpoint": reads,
        "xero_token_refreshes": xero.get("POST /connect/token", 0),
        "xero_events_by_category": {k: v for k, v in events.items() if k != "failed"},
        "inbox_rows_failed": events["failed"],
        # One call per XERO_BATCH records of each endpoint read, the records being those with events.
        "xero_minimum": sum(
            math.ceil(max(1, events.get(ENDPOINT_CATEGORY.get(endpoint, ""), 0)) / XERO_BATCH)
            for endpoint in reads
        ),
        "pipedrive_calls": sum(pipedrive.values()),
        "pipedrive_calls_by_endpoint": pipedrive,
        "pipedrive_writes": writes,
        "pipedrive_tokens": tokens,
        "pipedrive_minimum_tokens": minimum_tokens,
        "pipedrive_records_changed": {
            name: {"created": c["created"], "updated": c["updated"]} for name, c in changed.items()
        },
        "http_429": sum(int(n) for s, n in pipedrive_after["by_status"].items() if s == "429")
        - sum(int(n) for s, n in pipedrive_before["by_status"].items() if s == "429"),
    }


def _per_1000(value: float, records: int) -> float:
    return round(value * 1000 / records, 1) if records else 0.0


def print_report(args, label: str, phases: dict) -> dict:
    print()
    print(f"API economy, {label}: bursts of {args.records} records; qcluster {args.q_workers} workers")
    header = (
        f"{'burst':<36}{'Xero calls':>11}{'min':>5}{'/1000':>7}{'PD calls':>9}{'PD writes':>10}"
        f"{'PD tokens':>10}{'min':>7}{'tok/rec':>8}{'secs':>7}"
    )
    print(header)
    for key, title, _ in PHASES:
        p = phases[key]
        per_1000 = _per_1000(p["xero_calls"], p["records"])
        print(
            f"{title:<36}{p['xero_calls']:>11}{p['xero_minimum']:>5}{per_1000:>7}"
            f"{p['pipedrive_calls']:>9}{p['pipedrive_writes']:>10}{p['pipedrive_tokens']:>10}"
            f"{p['pipedrive_minimum_tokens']:>7}{p['pipedrive_tokens'] / p['records']:>8.1f}{p['seconds']:>7}"
        )
        if p["inbox_rows_failed"]:
            print(f"  !! {p['inbox_rows_failed']} inbox rows failed in this burst (see the admin's inbox)")
    new, unchanged = phases["contacts_new"], phases["contacts_unchanged"]
    xero_total = sum(p["xero_calls"] for p in phases.values())
    xero_minimum = sum(p["xero_minimum"] for p in phases.values())
    tokens_total = sum(p["pipedrive_tokens"] for p in phases.values())
    tokens_minimum = sum(p["pipedrive_minimum_tokens"] for p in phases.values())
    figures = {
        "xero_calls_per_1000_contacts": max(
            _per_1000(new["xero_calls"], new["records"]),
            _per_1000(unchanged["xero_calls"], unchanged["records"]),
        ),
        "pipedrive_tokens_per_new_contact": round(new["pipedrive_tokens"] / new["records"], 2),
        "pipedrive_writes_unchanged": unchanged["pipedrive_writes"],
        "xero_over_minimum": round(xero_total / xero_minimum, 2) if xero_minimum else None,
        "pipedrive_over_minimum": round(tokens_total / tokens_minimum, 2) if tokens_minimum else None,
    }
    print()
    checks = [
        ("Xero calls per 1,000 contact events", figures["xero_calls_per_1000_contacts"], "≤ 20", 20),
        (
            "Pipedrive tokens per new contact (one person)",
            figures["pipedrive_tokens_per_new_contact"],
            "≤ 11",
            11,
        ),
        ("Pipedrive writes for unchanged records", figures["pipedrive_writes_unchanged"], "0", 0),
        ("Xero calls ÷ minimum, all bursts", figures["xero_over_minimum"], "≤ 1.10", 1.10),
        ("Pipedrive tokens ÷ minimum, all bursts", figures["pipedrive_over_minimum"], "≤ 1.10", 1.10),
    ]
    for title, value, goal, bound in checks:
        met = value is not None and value <= bound
        print(
            f"{title:<52}{'-' if value is None else value:>10}   goal {goal:<8}{'MET' if met else 'NOT MET'}"
        )
    return {
        "benchmark": "api_economy",
        "setup": label,
        "records_per_burst": args.records,
        "q_workers": args.q_workers,
        "phases": phases,
        "figures": figures,
        "goals": GOALS,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    config = StackConfig(
        database=args.database,
        q_workers=args.q_workers,
        keep=args.keep,
        extra_env={"PIPEDRIVE_BURST_LIMIT": "40"},
    )
    try:
        with Stack(config) as stack:
            print(f"Stack up ({config.label}); four bursts of {args.records} records ...", flush=True)
            # The pair's first sync reads what it then keeps (the Pipedrive index of organizations
            # and persons, custom fields, the pipeline's stages): one contact, invoice and payment
            # first, so the bursts show the steady state; the one-time reads are reported apart.
            warm_up = [
                measure_phase(stack, key, step, 1, prefix="Warmup")
                for key, _, step in PHASES
                if key != "contacts_unchanged"
            ]
            one_time = {
                "xero_calls": sum(p["xero_calls"] for p in warm_up),
                "pipedrive_tokens": sum(p["pipedrive_tokens"] for p in warm_up),
                "pipedrive_minimum_tokens": sum(p["pipedrive_minimum_tokens"] for p in warm_up),
            }
            print(
                f"  warm-up (one contact, invoice, payment): {one_time['xero_calls']} Xero calls, "
                f"{one_time['pipedrive_tokens']} Pipedrive tokens "
                f"(writes alone: {one_time['pipedrive_minimum_tokens']})",
                flush=True,
            )
            phases = {}
            for key, title, step in PHASES:
                phases[key] = measure_phase(stack, key, step, args.records)
                print(f"  {title}: synced in {phases[key]['seconds']} s", flush=True)
            figures = print_report(args, config.label, phases)
            figures["warm_up"] = one_time
    except CannotRun as exc:
        print(f"Could not run the API economy benchmark: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
