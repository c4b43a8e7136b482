"""The suite's tiers and its pass-2 marker, worked out for each test from its path, the fixtures it uses
and what its module imports (docs/testing.md). ``tests/conftest.py`` applies them at collection, so a
new test falls into its tier without a marker written by hand.

Tiers, one per test, the first that applies:

- ``browser``: under ``tests/browser/`` (Chromium through Playwright);
- ``resilience``: under ``tests/resilience/`` (real connector processes, killed and faulted);
- ``sdk``: an official client (``tests/**/*_sdk.py``: xero-python, Pipedrive's Node client);
- ``fuzz``: requests generated from the official specs (its module imports ``schemathesis``;
  ``FUZZ_EXAMPLES`` sets the depth, ``make soak`` runs it deep);
- ``live``: a live server (``live_server``, ``sandbox_urls``...) or other processes (its module imports
  ``subprocess`` or ``tests.app_process``);
- ``db``: the test database (``db``, ``transactional_db``, ``django_db``...);
- ``unit``: none of these.

``backend`` (the PostgreSQL + Redis pass of ``.ci/run``): the outcome can depend on the database or the
broker. A test gets it when its module imports, itself or through the suite's helper modules, one of
:data:`BACKEND_MODULES` (the drain, the inbox, locks, token refresh, rate limits, transactions,
migrations, the task queue, Redis), when it sits under one of :data:`BACKEND_PATHS`, when it uses one of
:data:`BACKEND_FIXTURES`, or when it is marked ``postgres`` or ``backend`` by hand.
``tests/test_architecture.py`` checks the rule on every test module, independently of this code.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

TIERS = ("browser", "resilience", "sdk", "fuzz", "live", "db", "unit")
ROOT = Path(__file__).resolve().parents[1]

# Modules whose behaviour differs between SQLite + the ORM broker and PostgreSQL + Redis: a test module
# importing one of them (or something inside it) runs on both passes.
BACKEND_MODULES = (
    "connector.intake.drain",
    "connector.intake.inbox",
    "connector.locks",
    "connector.connections.oauth",  # token refresh: a row lock against concurrent refreshes
    "connector.limits",  # the rate limits' counters: database rows or Redis keys
    "django.db.transaction",
    "django.db.migrations",
    "django_q",
    "redis",
)
BACKEND_PATHS = (
    "tests/resilience/",
    "tests/connector/intake/",  # the receivers store into the inbox, the drain claims from it
)
# Fixtures that start the connector's processes or read the broker: their tests run on both passes.
BACKEND_FIXTURES = frozenset({"make_stack", "migrated_template", "private_postgres", "private_redis"})
LIVE_FIXTURES = frozenset({"live_server"})
DB_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}
)
PROCESS_MODULES = ("subprocess", "tests.app_process", "tests.resilience.stack")


def relative(path: str | Path) -> str:
    """``tests/...`` for a file of the suite (forward slashes)."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _module_file(name: str) -> Path | None:
    """The file of ``tests.…`` module ``name`` in this checkout, if there is one."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def direct_imports(path: Path) -> frozenset[str]:
    """Every module the file imports, anywhere in it (``from a import b`` counts as ``a`` and ``a.b``)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError):
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


@functools.cache
def imports_through_helpers(path: Path) -> frozenset[str]:
    """The file's imports plus those of the suite's own helper modules it imports (``tests.…``,
    transitively; conftest files are left out: pytest loads them for every test below them)."""
    seen: set[Path] = set()
    found: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in direct_imports(current):
            found.add(name)
            if name.startswith("tests.") and not name.endswith("conftest"):
                helper = _module_file(name)
                if helper is not None:
                    todo.append(helper)
    return frozenset(found)


def backend_reasons(path: str | Path, fixturenames=(), markers=()) -> list[str]:
    """Why a test of this file, with these fixtures and marker names, must run on both backends."""
    where = relative(path)
    reasons = [f"under {prefix}" for prefix in BACKEND_PATHS if where.startswith(prefix)]
    imported = imports_through_helpers(Path(path).resolve())
    reasons += [f"imports {name}" for name in sorted(imported) if _within(name, BACKEND_MODULES)]
    reasons += [f"uses {name}" for name in sorted(BACKEND_FIXTURES.intersection(fixturenames))]
    reasons += [f"marked {name}" for name in ("postgres", "backend") if name in markers]
    return reasons


def tier_of(path: str | Path, fixturenames=(), markers=()) -> str:
    """The test's tier (see the module's docstring); a tier marker written by hand wins."""
    for tier in TIERS:
        if tier in markers:
            return tier
    where = relative(path)
    if where.startswith("tests/browser/"):
        return "browser"
    if where.startswith("tests/resilience/"):
        return "resilience"
    if Path(where).stem.endswith("_sdk"):
        return "sdk"
    imported = imports_through_helpers(Path(path).resolve())
    if any(_within(name, ("schemathesis",)) for name in imported):
        return "fuzz"
    fixtures = set(fixturenames)
    if fixtures & LIVE_FIXTURES or any(_within(name, PROCESS_MODULES) for name in imported):
        return "live"
    if fixtures & DB_FIXTURES or "django_db" in markers:
        return "db"
    return "unit"


def group_of(tier: str, is_property_based: bool) -> str:
    """The timing table's group (scripts/test_timing.py): the tier, with the spec fuzzing and the
    other property-based (hypothesis) tests of the unit, db and live tiers together as "fuzz"."""
    return "fuzz" if is_property_based and tier in ("unit", "db", "live") else tier
