"""End-to-end latency: a write in sandbox Xero → the record visible in sandbox Pipedrive.

    .venv/bin/python bench/latency.py [--changes 1000] [--rate 3] [--pool 100]
        [--database sqlite|postgres] [--q-workers 2] [--json latency.json] [--keep]

One run (bench/stack.py): the sandbox as its own service and the connector under gunicorn with
a qcluster of ``--q-workers`` workers. ``--pool`` contacts (each with one person) are created in
sandbox Xero and synced through the real pipeline first (Xero's webhooks, the inbox, the drain).
Then ``--changes`` renames are written at a steady ``--rate`` (round robin over the pool, each
with a unique name), one at a time by a separate process, and each change is timed through
its stages from the records the run leaves behind:

- **written**: the sandbox contact's ``UpdatedDateUTC`` (its row, microseconds);
- **received**: the connector's inbox row for that event (``received_at``);
- **drain start**: the drain claiming that row (``claimed_at``);
- **visible**: the sandbox Pipedrive organization written with the new name (the moment of the
  sandbox's own outgoing webhook for that write, which it records as it commits it).

Stages: sandbox delivery delay (written → received: the sandbox's sender, not the connector),
receipt → drain start (the task queue), drain → Pipedrive write (the sync), the connector's share
(received → visible) and end to end (written → visible); p50/p95/p99 of each. Goal for the
connector's share: p95 ≤ 300 ms, p99 ≤ 1 s. All processes share one clock (one machine).

Xero allows 60 calls a minute per organisation; a steady 3 changes a second synced one by one
would need more, so by default the sandbox app's and the connector's Xero minute limit is raised
to ``--xero-minute-limit`` (6000) for this run: the figure is the pipeline's own speed. Run with
``--xero-minute-limit 60 --rate 0.8`` for real limits. bench/api_economy.py counts the calls.

Pipedrive allows each token a number of requests per rolling 2 s by plan (the sandbox's demo company is
on Growth: 40 for an API token, 160 for an OAuth app), and the connector's limiter holds its calls to
``PIPEDRIVE_BURST_LIMIT`` (20 by default, the smallest plan's API token). A rename is one PATCH, so 20
changes a second need more than 10 requests a second: the run sets the sandbox company's and the
connector's burst limit to ``--pipedrive-burst-limit`` (80, below an OAuth app's 160 on Growth). At 20,
the queue grows by the difference and the figure measures Pipedrive's limit, not the connector.

Prints a table and exits 0; 1 when changes never became visible; 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import CannotRun, Stack, StackConfig, percentiles  # noqa: E402

GOALS = {"connector": {"p95": 300.0, "p99": 1000.0}}
STAGES = [
    ("delivery", "sandbox delivery delay (written → received)"),
    ("to_drain", "receipt → drain start"),
    ("drain_to_write", "drain start → Pipedrive write"),
    ("connector", "connector's share (received → Pipedrive written)"),
    ("end_to_end", "end to end (Xero written → Pipedrive visible)"),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="renames to time (default 1000)")
    parser.add_argument("--rate", type=float, default=3.0, help="changes per second (default 3)")
    parser.add_argument("--pool", type=int, default=100, help="contacts renamed round robin (default 100)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--q-workers", type=int, default=2, help="qcluster workers (default 2)")
    parser.add_argument("--xero-minute-limit", type=int, default=6000)
    parser.add_argument(
        "--pipedrive-burst-limit",
        type=int,
        default=80,
        help="Pipedrive requests per 2 s per token, sandbox and connector (default 80; see above)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and the logs")
    args = parser.parse_args(argv)
    args.pool = max(1, min(args.pool, args.changes))
    return args


def visible_times(changes: list[dict], writes: dict[str, list[float]]) -> tuple[dict[int, float], int]:
    """When each change became visible: the first organization write, at or after the change, with its
    name or a later name of the same contact (a sync that read a newer name shows this change too,
    superseded). Returns {change number: moment} and how many were superseded."""
    by_contact: dict[str, list[dict]] = {}
    for change in changes:
        by_contact.setdefault(change["contact_id"], []).append(change)
    visible, superseded = {}, 0
    for sequence in by_contact.values():
        for position, change in enumerate(sequence):
            own = [t for t in writes.get(change["name"], []) if t >= change["written_at"] - 0.001]
            later = [
                t
                for newer in sequence[position + 1 :]
                for t in writes.get(newer["name"], [])
                if t >= change["written_at"] - 0.001
            ]
            if own or later:
                moment = min(own + later)
                visible[change["change"]] = moment
                superseded += not own or min(own) > moment
    return visible, superseded


def stage_times(changes: list[dict], inbox: dict, visible: dict[int, float]) -> tuple[dict, int]:
    """Per stage, the seconds each change spent in it; and how many changes never became visible."""
    stages: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    invisible = 0
    for change in changes:
        moment = visible.get(change["change"])
        if moment is None:
            invisible += 1
            continue
        written = change["written_at"]
        stages["end_to_end"].append(moment - written)
        # The inbox row of this change: the first event of the contact at or after the write.
        row = next((r for r in inbox.get(change["contact_id"], []) if r[0] >= written - 0.002), None)
        if row is None:
            continue
        _, received, claimed = row
        stages["delivery"].append(received - written)
        stages["connector"].append(moment - received)
        if claimed is not None:
            stages["to_drain"].append(claimed - received)
            # Negative when an earlier event's sync already read and wrote this change.
            stages["drain_to_write"].append(moment - claimed)
    return stages, invisible


def read_inbox(tenant_id: str) -> dict[str, list[tuple[float, float, float | None]]]:
    """Xero contact events by resource: (event time, received, claimed), oldest first."""
    from django.db import connections

    from connector.models import WebhookEvent

    rows = (
        WebhookEvent.objects.filter(source=WebhookEvent.Source.XERO, category="CONTACT", tenant_id=tenant_id)
        .order_by("event_time", "id")
        .values_list("resource_id", "event_time", "received_at", "claimed_at")
    )
    inbox: dict[str, list] = {}
    for resource_id, event_time, received_at, claimed_at in rows.iterator(chunk_size=5000):
        inbox.setdefault(resource_id, []).append(
            (event_time.timestamp(), received_at.timestamp(), claimed_at.timestamp() if claimed_at else None)
        )
    connections.close_all()
    return inbox


def print_report(args, label: str, stages: dict, invisible: int, extra: dict) -> dict:
    print()
    print(
        f"Latency, {label}: {args.changes} changes at {args.rate:g}/s over {args.pool} contacts; "
        f"qcluster {args.q_workers} workers; Xero minute limit {args.xero_minute_limit}; "
        f"Pipedrive burst {args.pipedrive_burst_limit} per 2 s"
    )
    print(f"{'stage':<52}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'n':>6}   goal")
    figures = {}
    for name, title in STAGES:
        stats = percentiles(stages[name])
        figures[name] = stats
        goal = ""
        if name in GOALS:
            goal = f"p95 ≤ {GOALS[name]['p95']:g}, p99 ≤ {GOALS[name]['p99']:g}"
            met = stats["count"] and stats["p95"] <= GOALS[name]["p95"] and stats["p99"] <= GOALS[name]["p99"]
            goal += "  MET" if met else "  NOT MET"
        cells = "".join(f"{'-' if stats[k] is None else stats[k]:>9}" for k in ("p50", "p95", "p99", "max"))
        print(f"{title:<52}{cells}{stats['count']:>6}   {goal}")
    if invisible:
        print(f"!! {invisible} changes never became visible in Pipedrive")
    xero, pipedrive = extra["sandbox_answer_ms"].values()
    print(
        "of which the sandbox answering (whole run, p50/p95 ms): Xero GET Contacts "
        f"{xero['p50']}/{xero['p95']}, Pipedrive PATCH organization {pipedrive['p50']}/{pipedrive['p95']}"
    )
    print(
        f"{extra['superseded']} changes shown by a sync that had already read a newer name; writer at most "
        f"{extra.get('most_behind_schedule_s')} s behind schedule; load average {extra['load_average']} "
        f"on {os.cpu_count()} CPUs"
    )
    return {
        "benchmark": "latency",
        "setup": label,
        "changes": args.changes,
        "rate_per_s": args.rate,
        "pool": args.pool,
        "q_workers": args.q_workers,
        "xero_minute_limit": args.xero_minute_limit,
        "pipedrive_burst_limit": args.pipedrive_burst_limit,
        "stages_ms": figures,
        "invisible": invisible,
        "goals_ms": GOALS,
        **extra,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    config = StackConfig(
        database=args.database,
        q_workers=args.q_workers,
        xero_minute_limit=args.xero_minute_limit,
        pipedrive_burst_limit=args.pipedrive_burst_limit,
    )
    config.keep = args.keep
    try:
        with Stack(config) as stack:
            print(f"Stack up ({config.label}); creating and syncing {args.pool} contacts ...", flush=True)
            stack.sandbox("contacts", {"count": args.pool, "prefix": "Latency"})
            waited = stack.wait_until_quiet()
            print(
                f"Initial sync done in {waited:.1f} s; {args.changes} changes at {args.rate:g}/s ...",
                flush=True,
            )
            out = stack.data_dir / "changes.jsonl"
            writer = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "sandbox_side.py"), "renames"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=stack.sandbox_env,
            )
            arguments = {"prefix": "Latency", "rate": args.rate, "changes": args.changes, "out": str(out)}
            answer, _ = writer.communicate(json.dumps(arguments), timeout=args.changes / args.rate + 600)
            if writer.returncode != 0:
                raise CannotRun("the writer failed")
            extra = json.loads(answer.strip().splitlines()[-1])
            time.sleep(0.5)
            stack.wait_until_quiet()
            changes = [json.loads(line) for line in out.read_text().splitlines()]
            writes: dict[str, list[float]] = {}
            for _record_id, name, moment in stack.sandbox("organization-writes")["writes"]:
                writes.setdefault(name, []).append(moment)
            visible, superseded = visible_times(changes, writes)
            stages, invisible = stage_times(changes, read_inbox(stack.tenant_id), visible)
            extra["superseded"] = superseded
            durations = stack.request_durations("sandbox")
            extra["sandbox_answer_ms"] = {
                name: percentiles(durations.get(path, []))
                for name, path in (
                    ("xero_get_contacts", "GET /sandbox/xero/api/api.xro/2.0/Contacts"),
                    ("pipedrive_patch_organization", "PATCH /sandbox/pipedrive/api/v2/organizations/{id}"),
                )
            }
            extra["load_average"] = [round(x, 2) for x in os.getloadavg()]
            figures = print_report(args, config.label, stages, invisible, extra)
    except CannotRun as exc:
        print(f"Could not run the latency benchmark: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if invisible else 0


if __name__ == "__main__":
    sys.exit(main())
