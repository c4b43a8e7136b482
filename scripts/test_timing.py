#!/usr/bin/env python3
"""Where the test time goes: a table by group, before and after, from pytest's junit XML files.

    scripts/test_timing.py --before sqlite=OLD-1.xml --before postgres=OLD-2.xml \
                           --after sqlite=NEW-1.xml --after postgres=NEW-2.xml [--wall sqlite=512 ...]

Each ``--before``/``--after`` names a pass of ``.ci/run`` and its junit XML (``--junitxml``). A test's
group is the ``group`` property that tests/conftest.py writes into the XML (its tier, with the
property-based tests as "fuzz", docs/testing.md); a test of a "before" file that has no such property
(written before the tiers existed) takes the group of the same test in an "after" file, else the one its
path gives. Seconds are pytest's per-test times (setup + call + teardown) summed: with xdist workers they
add up to more than the wall time, which is the XML's own session time, or the ``--wall`` given (the
whole pass, installs included, e.g. from ``.ci/run``'s log).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "live": "live servers and app processes",
    "resilience": "process kills (resilience)",
    "fuzz": "fuzz (spec fuzzing, hypothesis)",
    "browser": "browser",
    "sdk": "official SDKs",
    "db": "db",
    "unit": "unit",
}


@dataclass
class Run:
    """One junit XML file: each test's group and seconds, and the session's wall time."""

    tests: dict[str, tuple[str, float, str]] = field(default_factory=dict)  # id -> (group, seconds, outcome)
    wall: float = 0.0


def _outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def read(path: Path) -> Run:
    """One pass's report: ``FILE.xml`` and, when the run wrote it, ``FILE-fuzz.xml`` (scripts/test.sh
    runs the spec fuzzing in a second pytest process after the workers)."""
    run = Run()
    reports = [report for report in (path, path.with_name(f"{path.stem}-fuzz.xml")) if report.exists()]
    roots = [ET.parse(report).getroot() for report in reports]  # noqa: S314 (this machine's own reports)
    cases = []
    for root in roots:
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        run.wall += sum(float(suite.get("time", 0)) for suite in suites)
        cases += list(root.iter("testcase"))
    for case in cases:
        test_id = f"{case.get('classname')}::{case.get('name')}"
        repeat = 1
        while f"{test_id}#{repeat}" in run.tests or (repeat == 1 and test_id in run.tests):
            repeat += 1  # schemathesis' items share one name: each is still its own test
        test_id = test_id if repeat == 1 else f"{test_id}#{repeat}"
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        run.tests[test_id] = (properties.get("group", ""), float(case.get("time", 0)), _outcome(case))
    return run


def guess_group(test_id: str) -> str:
    """For a test of an old run that is in no new run: its group from its path alone."""
    sys.path.insert(0, str(ROOT))
    from tests import tiers  # the suite's own rules; imported here so the script runs without them too

    module = test_id.split("::")[0].split("#")[0]
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    tier = tiers.tier_of(path)
    return tier if tier != "unit" else "db"  # without its fixtures, "db" is the likelier (and costlier)


def fill_groups(before: Run, known: dict[str, str]) -> None:
    for test_id, (group, seconds, outcome) in list(before.tests.items()):
        if not group:
            before.tests[test_id] = (known.get(test_id) or guess_group(test_id), seconds, outcome)


def by_group(run: Run) -> dict[str, tuple[int, float]]:
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for group, seconds, outcome in run.tests.values():
        if outcome == "skipped":
            continue
        totals[group][0] += 1
        totals[group][1] += seconds
    return {group: (count, seconds) for group, (count, seconds) in totals.items()}


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {value!r}")
        pairs.append((name, rest))
    return pairs


def _cell(count: int, seconds: float) -> str:
    return f"{count} / {seconds:,.0f} s" if count else "-"


def table(before: dict[str, Run], after: dict[str, Run], walls: dict[str, float]) -> str:
    passes = list(dict.fromkeys([*before, *after]))
    header = ["group"]
    for name in passes:
        header += [f"{name} before", f"{name} after"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grouped = {
        (side, name): by_group(run)
        for side, runs in (("b", before), ("a", after))
        for name, run in runs.items()
    }
    groups = [*GROUPS, *sorted({g for t in grouped.values() for g in t} - set(GROUPS))]
    for group in groups:
        row = [GROUPS.get(group, group)]
        for name in passes:
            for side in ("b", "a"):
                row.append(_cell(*grouped.get((side, name), {}).get(group, (0, 0.0))))
        lines.append("| " + " | ".join(row) + " |")
    totals = ["tests run / summed test seconds"]
    sessions = ["pytest session (wall)"]
    whole = ["whole pass incl. installs and lint (wall)"]
    for name in passes:
        for side, runs in (("b", before), ("a", after)):
            run = runs.get(name)
            counts = grouped.get((side, name), {})
            totals.append(
                _cell(sum(c for c, _ in counts.values()), sum(s for _, s in counts.values())) if run else "-"
            )
            sessions.append(f"{run.wall:,.0f} s" if run else "-")
            wall = walls.get(f"{side}:{name}")
            whole.append(f"{wall:,.0f} s" if wall else "-")
    lines += ["| " + " | ".join(row) + " |" for row in (totals, sessions)]
    if walls:
        lines.append("| " + " | ".join(whole) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", action="append", default=[], metavar="PASS=FILE.xml")
    parser.add_argument("--after", action="append", default=[], metavar="PASS=FILE.xml")
    parser.add_argument(
        "--wall",
        action="append",
        default=[],
        metavar="before:PASS=SECONDS",
        help="a whole pass's wall time (installs included), e.g. after:sqlite=480",
    )
    args = parser.parse_args(argv)
    if not args.before and not args.after:
        parser.error("give at least one --before or --after")
    after = {name: read(Path(path)) for name, path in _pairs(args.after)}
    known = {
        test_id: group for run in after.values() for test_id, (group, _, _) in run.tests.items() if group
    }
    before = {}
    for name, path in _pairs(args.before):
        before[name] = read(Path(path))
        fill_groups(before[name], known)
    walls = {}
    for key, seconds in _pairs(args.wall):
        side, _, name = key.partition(":")
        walls[f"{side[:1]}:{name}"] = float(seconds)
    print("Each cell: tests run (skips left out) / their summed seconds (setup + call + teardown).")
    print(table(before, after, walls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
