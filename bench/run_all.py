"""Run every benchmark and print one table: each figure beside its goal.

    make bench                      (scripts/bench.sh: makes .venv, then this)
    .venv/bin/python bench/run_all.py [--changes 1000] [--records 250] [--intake-duration 15]
        [--databases sqlite,postgres] [--only intake,backfill,latency,economy] [--json FILE]

Each benchmark runs as its own process (each starts and stops its own servers, databases and
temporary data folders) and writes its figures as JSON; this script collects them into one
JSON file (default ``var/bench/latest.json``) and prints the table. On PostgreSQL the benchmarks
use ``BENCH_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/ml_bench_e2e``; the
intake benchmark takes ``<name>_intake``) and Redis ``BENCH_REDIS_URL`` (default db 8); the
databases are dropped and created again. Benchmarks print figures; nothing here is a test.

- intake: bench/webhook_intake.py (the Xero receiver under wrk);
- backfill: bench/backfill.py when present (``main()`` with ``--json``), else "not present";
- latency: bench/latency.py (Xero write → visible in Pipedrive, by stage);
- economy: bench/api_economy.py (Xero calls and Pipedrive tokens per record).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import POSTGRES_DEFAULT, REDIS_DEFAULT  # noqa: E402

BENCHMARKS = ["intake", "backfill", "latency", "economy"]
LABELS = {"sqlite": "SQLite + ORM broker", "postgres": "PostgreSQL + Redis"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="latency: changes timed (default 1000)")
    parser.add_argument("--rate", type=float, default=3.0, help="latency: changes per second (default 3)")
    parser.add_argument("--records", type=int, default=250, help="economy: records per burst (default 250)")
    parser.add_argument("--intake-duration", type=float, default=15, help="intake: seconds per target")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="which benchmarks, comma-separated")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "latest.json")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    if not set(args.databases) <= set(LABELS) or not set(args.only) <= set(BENCHMARKS):
        parser.error(f"--databases takes {', '.join(LABELS)}; --only takes {', '.join(BENCHMARKS)}")
    return args


def _postgres_url(suffix: str = "") -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", POSTGRES_DEFAULT)
    return url + suffix if suffix else url


def run_child(command: list[str], json_path: Path) -> tuple[int, dict | None]:
    """Run one benchmark, its output shown as it goes; its JSON figures, if it wrote them."""
    print(f"\n$ {' '.join(command)}", flush=True)
    returncode = subprocess.run(command, cwd=ROOT, check=False).returncode
    figures = None
    if json_path.exists():
        figures = json.loads(json_path.read_text())
    return returncode, figures


def row(benchmark, setup, figure, value, goal="", met=None) -> dict:
    return {
        "benchmark": benchmark,
        "setup": setup,
        "figure": figure,
        "value": value,
        "goal": goal,
        "met": met,
    }


def intake_rows(database: str, figures: dict | None, returncode: int) -> list[dict]:
    setup = LABELS[database]
    if not figures or "receiver" not in figures.get("targets", {}):
        return [row("intake", setup, "did not run", f"exit {returncode}")]
    receiver = figures["targets"]["receiver"]
    rate, p99 = receiver["requests_per_s"], round(receiver["latency_ms"]["p99"], 1)
    verdict = (figures.get("inbox") or {}).get("verdict", "")
    return [
        row("intake", setup, "receiver batches/s (10 events each)", rate, "≥ 500", rate >= 500),
        row("intake", setup, "receiver p99 ms (32 connections)", p99, "< 100", p99 < 100),
        row("intake", setup, "lost events", verdict, "zero", verdict.startswith("zero")),
    ]


def backfill_rows(present: bool, figures: dict | None, returncode: int) -> list[dict]:
    if not present:
        return [row("backfill", "-", "bench/backfill.py", "not present (backfill issue not merged)")]
    if not figures:
        return [row("backfill", "-", "did not run", f"exit {returncode}")]
    rows = []
    for key, value in _numeric_leaves(figures)[:8]:
        rows.append(row("backfill", figures.get("setup", "-"), key, value, "see bench/backfill.py"))
    return rows or [row("backfill", "-", "ran", "figures in the JSON file")]


def _numeric_leaves(data, prefix="") -> list[tuple[str, float]]:
    leaves = []
    if isinstance(data, dict):
        for key, value in data.items():
            leaves += _numeric_leaves(value, f"{prefix}{key}.")
    elif isinstance(data, int | float) and not isinstance(data, bool):
        leaves.append((prefix.rstrip("."), data))
    return leaves


def latency_rows(database: str, figures: dict | None, returncode: int) -> list[dict]:
    setup = LABELS[database]
    if not figures:
        return [row("latency", setup, "did not run", f"exit {returncode}")]
    stages = figures["stages_ms"]
    setup += f", {figures['changes']} changes at {figures['rate_per_s']:g}/s"
    rows = []
    for name, title in (
        ("delivery", "sandbox delivery delay p50/p95/p99 ms"),
        ("to_drain", "receipt → drain start p50/p95/p99 ms"),
        ("drain_to_write", "drain → Pipedrive write p50/p95/p99 ms"),
        ("end_to_end", "Xero write → visible in Pipedrive p50/p95/p99 ms"),
    ):
        s = stages[name]
        rows.append(row("latency", setup, title, f"{s['p50']} / {s['p95']} / {s['p99']}"))
    s = stages["connector"]
    met = s["count"] > 0 and s["p95"] <= 300 and s["p99"] <= 1000
    rows.insert(
        3,
        row(
            "latency",
            setup,
            "connector's share (received → written) p50/p95/p99 ms",
            f"{s['p50']} / {s['p95']} / {s['p99']}",
            "p95 ≤ 300, p99 ≤ 1000",
            met,
        ),
    )
    if figures.get("invisible"):
        rows.append(row("latency", setup, "changes never visible", figures["invisible"], "0", False))
    return rows


def economy_rows(database: str, figures: dict | None, returncode: int) -> list[dict]:
    setup = LABELS[database]
    if not figures:
        return [row("economy", setup, "did not run", f"exit {returncode}")]
    f = figures["figures"]
    setup += f", bursts of {figures['records_per_burst']}"
    rows = [
        row(
            "economy",
            setup,
            "Xero calls per 1,000 contact events",
            f["xero_calls_per_1000_contacts"],
            "≤ 20",
            f["xero_calls_per_1000_contacts"] <= 20,
        ),
        row(
            "economy",
            setup,
            "Pipedrive tokens per new contact (one person)",
            f["pipedrive_tokens_per_new_contact"],
            "≤ 11",
            f["pipedrive_tokens_per_new_contact"] <= 11,
        ),
        row(
            "economy",
            setup,
            "Pipedrive writes for unchanged records",
            f["pipedrive_writes_unchanged"],
            "0",
            f["pipedrive_writes_unchanged"] == 0,
        ),
    ]
    for key, title in (
        ("xero_over_minimum", "Xero calls ÷ minimum"),
        ("pipedrive_over_minimum", "Pipedrive tokens ÷ minimum"),
    ):
        value = f[key]
        rows.append(
            row(
                "economy", setup, f"{title}, all bursts", value, "≤ 1.10", value is not None and value <= 1.10
            )
        )
    for key, phase in figures["phases"].items():
        rows.append(
            row(
                "economy",
                setup,
                f"{key}: Xero calls (min) / Pipedrive tokens (min)",
                f"{phase['xero_calls']} ({phase['xero_minimum']}) / "
                f"{phase['pipedrive_tokens']} ({phase['pipedrive_minimum_tokens']})",
            )
        )
    return rows


def print_table(rows: list[dict]) -> None:
    widths = {
        "benchmark": 9,
        "setup": max(len(r["setup"]) for r in rows),
        "figure": max(len(r["figure"]) for r in rows),
        "value": max(len(str(r["value"])) for r in rows),
        "goal": max(len(r["goal"]) for r in rows),
    }
    print()
    print("=" * 100)
    header = "  ".join(name.ljust(width) for name, width in widths.items()) + "  met"
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = {True: "yes", False: "NO", None: ""}[r["met"]]
        print("  ".join(str(r[name]).ljust(width) for name, width in widths.items()) + f"  {verdict}")


def main(argv=None) -> int:
    args = parse_args(argv)
    python = sys.executable
    rows, results = [], {}
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as temp:
        temp_dir = Path(temp)
        if "intake" in args.only:
            for database in args.databases:
                out = temp_dir / f"intake-{database}.json"
                command = [python, "bench/webhook_intake.py", "--duration", f"{args.intake_duration:g}"]
                if database == "postgres":
                    redis = os.environ.get("BENCH_REDIS_URL", REDIS_DEFAULT)
                    command += ["--database", _postgres_url("_intake"), "--redis", redis]
                code, figures = run_child([*command, "--json", str(out)], out)
                results[f"intake-{database}"] = figures
                rows += intake_rows(database, figures, code)
        if "backfill" in args.only:
            script = ROOT / "bench" / "backfill.py"
            present = script.exists()
            code, figures = 0, None
            if present:
                out = temp_dir / "backfill.json"
                code, figures = run_child([python, "bench/backfill.py", "--json", str(out)], out)
            results["backfill"] = figures if present else "not present"
            rows += backfill_rows(present, figures, code)
        for name, script, options, to_rows in (
            (
                "latency",
                "bench/latency.py",
                ["--changes", str(args.changes), "--rate", f"{args.rate:g}"],
                latency_rows,
            ),
            ("economy", "bench/api_economy.py", ["--records", str(args.records)], economy_rows),
        ):
            if name not in args.only:
                continue
            for database in args.databases:
                out = temp_dir / f"{name}-{database}.json"
                command = [python, script, *options, "--database", database, "--json", str(out)]
                code, figures = run_child(command, out)
                results[f"{name}-{database}"] = figures
                rows += to_rows(database, figures, code)
    print_table(rows)
    machine = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    print(
        f"\n{machine['cpus']} CPUs; load average {machine['load_average_before']} before, "
        f"{machine['load_average_after']} after; commit {machine['commit']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "table": rows, "results": results}, indent=2) + "\n")
    print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
