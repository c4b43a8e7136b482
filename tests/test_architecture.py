"""The import directions of docs/architecture.md, checked on the source (every import in the file,
at the top or inside a function, absolute or relative), and the checker shown able to fail."""

import ast
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests import tiers

BASE = Path(settings.BASE_DIR)
PRODUCT_APPS = ("config", "connector", "mapping", "audit")
HTTP_CLIENTS = (
    "requests",
    "urllib3",
    "http.client",
    "urllib.request",
    "httpx",
    "aiohttp",
    "connector.clients",
)


@dataclass(frozen=True)
class Rule:
    """Modules named by ``importers`` (package or module prefixes) must not import ``forbidden``."""

    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]


RULES = {
    "sandbox": Rule(
        "no product app imports the sandbox (only tests and demos use it)", PRODUCT_APPS, ("sandbox",)
    ),
    "mapping": Rule("mapping imports nothing from connector or audit", ("mapping",), ("connector", "audit")),
    "audit": Rule("audit imports nothing from connector", ("audit",), ("connector",)),
    "http": Rule("mapping makes no HTTP calls", ("mapping",), HTTP_CLIENTS),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int
    name: str = ""  # the name taken by ``from imported import name``, when it is not a module
    in_function: bool = False
    type_checking: bool = False  # under ``if TYPE_CHECKING:``

    def __str__(self):
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def source_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of these top-level packages under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _walk(node: ast.AST, in_function: bool = False, type_checking: bool = False):
    """Each import node under ``node``, with whether it sits in a function and under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function, type_checking
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for part in child.body:
                yield from _walk(ast.Module(body=[part], type_ignores=[]), in_function, True)
            for part in child.orelse:
                yield from _walk(ast.Module(body=[part], type_ignores=[]), in_function, type_checking)
        else:
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from _walk(child, inner, type_checking)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in the file, wherever it stands; relative imports resolved against ``module``.

    ``from package import name`` counts as importing ``package.name`` when that is a module,
    otherwise ``package`` (and ``name`` is kept as the name imported).
    """
    is_package = path.name == "__init__.py"
    found = []
    for node, in_function, type_checking in _walk(ast.parse(path.read_text(), filename=str(path))):
        where = {"path": path, "line": node.lineno}
        where |= {"in_function": in_function, "type_checking": type_checking}
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, **where) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join(part for part in [*anchor, base] if part)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in known:
                    found.append(Import(module, candidate, **where))
                else:
                    found.append(Import(module, base, name=alias.name, **where))
    return sorted(found, key=lambda i: i.line)


def all_imports(root: Path, packages: tuple[str, ...]) -> list[Import]:
    """The imports of every module of these packages (module names resolved against all of root's)."""
    modules = source_modules(root, packages)
    known = set(source_modules(root, tuple(p.parent.name for p in root.glob("*/__init__.py"))))
    return [found for module, path in modules.items() for found in imports_of(module, path, known)]


def forbidden_imports(root: Path, rule: Rule) -> list[str]:
    """Each import breaking the rule, as ``path:line: importer imports imported``."""
    packages = tuple(sorted({prefix.split(".")[0] for prefix in rule.importers}))
    return [
        str(found)
        for found in all_imports(root, packages)
        if _within(found.importer, rule.importers) and _within(found.imported, rule.forbidden)
    ]


# Modules of colleagues' files being split (connector/operations/backfill.py and reconciliation.py
# into smaller modules, connector/sync/contacts.py with them): a cycle through one of them, a private
# name they import and an import inside one of their functions are excused until the split lands.
def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node (or a node importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in sorted(edges[name]):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1 or name in edges[name]:
                groups.append(sorted(group))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return groups


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Groups of modules of ``package`` (a dotted name) that import one another, directly or not."""
    top = package.split(".")[0]
    modules = {name for name in source_modules(root, (top,)) if _within(name, (package,))}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for found in all_imports(root, (top,)):
        if found.importer in modules and found.imported in modules:
            edges[found.importer].add(found.imported)
    return _strongly_connected(edges)


def product_imports(root: Path) -> list[Import]:
    """Every import of product code, migrations left out."""
    return [found for found in all_imports(root, PRODUCT_APPS) if ".migrations" not in f".{found.importer}."]


def product_cycles(root: Path) -> list[str]:
    """Each cycle of the product's import graph (``if TYPE_CHECKING:`` imports left out), as a chain
    ``a (path:line) -> b (path:line) -> a`` going round one loop of each group importing one another."""
    imports = [found for found in product_imports(root) if not found.type_checking]
    modules = {found.importer for found in imports}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], Import] = {}
    for found in imports:
        if found.imported in modules:
            edges[found.importer].add(found.imported)
            where.setdefault((found.importer, found.imported), found)
    chains = []
    for group in _strongly_connected(edges):
        members = set(group)
        start = group[0]
        # breadth first from start, back to start, within the group: the shortest loop through it
        came_from: dict[str, str] = {}
        queue = [start]
        while queue and start not in came_from:
            name = queue.pop(0)
            for other in sorted(edges[name] & members):
                if other not in came_from:
                    came_from[other] = name
                    queue.append(other)
        loop = [start]
        while len(loop) == 1 or loop[-1] != start:
            loop.append(came_from[loop[-1]])
        loop.reverse()
        steps = [
            f"{a} ({where[a, b].path.relative_to(root)}:{where[a, b].line})"
            for a, b in itertools.pairwise(loop)
        ]
        chains.append(" -> ".join([*steps, start]) + f"  [group: {', '.join(group)}]")
    return chains


def private_imports(root: Path) -> list[str]:
    """Each ``from x import _y`` where x is a product module (dunder names are fine)."""
    modules = set(source_modules(root, PRODUCT_APPS))
    return [
        f"{found} name {found.name}"
        for found in product_imports(root)
        if found.imported in modules and found.name.startswith("_") and not found.name.startswith("__")
    ]


def _reason(comment: str) -> str:
    """A comment's words, tool directives (``noqa``, ``type: ignore``, ``pragma``) left out."""
    comment = re.sub(r"(noqa|type:\s*ignore|pragma)(\[[^\]]*\]|:\s*[\w, ]+)?", "", comment)
    return comment.strip(" #")


def unexplained_function_imports(root: Path) -> list[str]:
    """Each import inside a function of product code with no comment saying why, on its line or
    the line just before."""
    offenders = []
    for found in product_imports(root):
        if not found.in_function:
            continue
        lines = found.path.read_text().splitlines()
        own = lines[found.line - 1]
        before = lines[found.line - 2].strip() if found.line > 1 else ""
        own_comment = own.split("#", 1)[1] if "#" in own else ""
        before_comment = before if before.startswith("#") else ""
        if not (_reason(own_comment) or _reason(before_comment)):
            offenders.append(str(found))
    return sorted(set(offenders))


# ---------------------------------------------------------------- the project


def test_no_product_app_imports_the_sandbox():
    assert forbidden_imports(BASE, RULES["sandbox"]) == []


def test_mapping_imports_nothing_from_connector_or_audit():
    offenders = forbidden_imports(BASE, RULES["mapping"])
    assert offenders == [], "\n".join(offenders)


def test_audit_imports_nothing_from_connector():
    offenders = forbidden_imports(BASE, RULES["audit"])
    assert offenders == [], "\n".join(offenders)


def test_mapping_makes_no_http_calls():
    assert forbidden_imports(BASE, RULES["http"]) == []


def test_no_import_cycle_among_the_sync_modules():
    assert import_cycles(BASE, "connector.sync") == []


def test_no_import_cycle_in_product_code():
    cycles = product_cycles(BASE)
    assert cycles == [], "\n".join(cycles)


def test_every_import_inside_a_function_says_why():
    offenders = unexplained_function_imports(BASE)
    assert offenders == [], "\n".join(offenders)


def test_no_private_name_is_imported_from_another_module():
    offenders = private_imports(BASE)
    assert offenders == [], "\n".join(offenders)


# ---------------------------------------------------------------- the checker can fail


def plant(root: Path, files: dict[str, str]) -> Path:
    """A module tree under ``root``: clean modules of every app, plus ``files`` (path -> source)."""
    clean = {
        "config/__init__.py": "",
        "connector/__init__.py": "",
        "connector/models/__init__.py": "from mapping.models import RecordLink\n",
        "connector/sync/__init__.py": "from connector.sync import common\n",
        "connector/sync/common.py": "from audit.services import record_sync\n",
        "mapping/__init__.py": "",
        "mapping/models.py": "from django.db import models\n",
        "mapping/engine.py": "import decimal\nfrom . import models\n",
        "audit/__init__.py": "",
        "audit/models.py": "from django.db import models\n",
        "audit/services.py": "from audit.models import SyncRecord\n",
        "connector/admin/sync_records.py": "from connector import models\n",  # allowed
        "sandbox/__init__.py": "from connector import models\n",  # allowed: the sandbox may use anything
    }
    for relative, source in {**clean, **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_a_clean_tree_passes_every_check(tmp_path):
    root = plant(tmp_path, {})
    assert [forbidden_imports(root, rule) for rule in RULES.values()] == [[]] * len(RULES)
    assert import_cycles(root, "connector.sync") == []


@pytest.mark.parametrize(
    ("rule", "path", "source", "expected"),
    [
        (
            "sandbox",
            "connector/connections/views.py",
            "import sandbox.xero.services\n",
            "sandbox.xero.services",
        ),
        ("sandbox", "config/urls.py", "def urls():\n    from sandbox import urls\n", "sandbox"),
        ("mapping", "mapping/admin.py", "from connector.models import SyncPair\n", "connector.models"),
        (
            "mapping",
            "mapping/engine.py",
            "def credit():\n    if True:\n        from connector.sync import credit\n",
            "connector.sync",
        ),
        (
            "mapping",
            "mapping/rules.py",
            "class A:\n    def f(self):\n        import audit.services\n",
            "audit",
        ),
        ("mapping", "mapping/sub/x.py", "from ...connector import models\n", "connector.models"),
        ("audit", "audit/services.py", "def f():\n    from connector import drain\n", "connector"),
        ("audit", "audit/models.py", "from connector.models import SyncPair\n", "connector.models"),
        ("audit", "audit/admin.py", "from connector.operations import replay\n", "connector.operations"),
        ("audit", "audit/templatetags/x.py", "def f():\n    import connector.sync\n", "connector.sync"),
        ("http", "mapping/engine.py", "def f():\n    import requests\n", "requests"),
        ("http", "mapping/fields.py", "from urllib.request import urlopen\n", "urllib.request"),
        ("http", "mapping/rules.py", "from connector.clients.xero import XeroClient\n", "connector.clients"),
    ],
)
def test_a_planted_forbidden_import_is_reported(tmp_path, rule, path, source, expected):
    root = plant(tmp_path, {path: source})
    offenders = forbidden_imports(root, RULES[rule])
    assert len(offenders) == 1, offenders
    assert offenders[0].startswith(f"{root / path}:") and expected in offenders[0]


@pytest.mark.parametrize(
    "files",
    [
        {  # at the top of both
            "connector/sync/contacts.py": "from connector.sync import credit\n",
            "connector/sync/credit.py": "from connector.sync.contacts import sync_contacts\n",
        },
        {  # hidden inside a function, and relative
            "connector/sync/contacts.py": "from . import credit\n",
            "connector/sync/credit.py": "def recheck():\n    from .invoices import refresh\n",
            "connector/sync/invoices.py": "def refresh():\n    from .contacts import sync\n",
        },
    ],
)
def test_a_planted_sync_cycle_is_reported(tmp_path, files):
    root = plant(tmp_path, files)
    cycles = import_cycles(root, "connector.sync")
    assert cycles == [sorted(f"connector.sync.{Path(p).stem}" for p in files)]


def test_relative_imports_are_resolved_from_the_module_and_from_a_package(tmp_path):
    root = plant(
        tmp_path,
        {
            "connector/sync/payments.py": "from .common import audit\nfrom .. import models\n",
            "connector/sync/__init__.py": "from . import payments\n",
        },
    )
    modules = source_modules(root, ("connector",))
    known = set(modules)
    assert {
        i.imported for i in imports_of("connector.sync.payments", modules["connector.sync.payments"], known)
    } == {
        "connector.sync.common",
        "connector.models",
    }
    assert [i.imported for i in imports_of("connector.sync", modules["connector.sync"], known)] == [
        "connector.sync.payments"
    ]


def test_a_clean_tree_has_no_product_cycle_nor_private_import(tmp_path):
    root = plant(tmp_path, {})
    assert product_cycles(root) == []
    assert private_imports(root) == []


@pytest.mark.parametrize(
    ("files", "chain"),
    [
        (  # across packages, one side inside a function
            {
                "connector/sync/common.py": "from audit.services import record_sync\n",
                "audit/services.py": "def f():\n    from connector.sync import common\n",
            },
            "audit.services (audit/services.py:2) -> connector.sync.common (connector/sync/common.py:1)"
            " -> audit.services",
        ),
        (  # three modules, relative
            {
                "mapping/engine.py": "from . import rules\n",
                "mapping/rules.py": "from .fields import F\n",
                "mapping/fields.py": "def f():\n    if True:\n        from mapping.engine import run\n",
            },
            "mapping.engine (mapping/engine.py:1) -> mapping.rules (mapping/rules.py:1)"
            " -> mapping.fields (mapping/fields.py:3) -> mapping.engine",
        ),
    ],
)
def test_a_planted_product_cycle_is_reported_as_a_chain(tmp_path, files, chain):
    root = plant(tmp_path, files)
    cycles = product_cycles(root)
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith(chain + "  [group: "), cycles


def test_type_checking_imports_and_migrations_make_no_cycle(tmp_path):
    root = plant(
        tmp_path,
        {
            "audit/services.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from connector.sync import common\n"
            ),
            "connector/migrations/__init__.py": "",
            "connector/migrations/0001_initial.py": "from connector.sync import common\n",
            "connector/sync/common.py": "from audit.services import f\nimport connector.migrations\n",
            "mapping/engine.py": "import typing\nif typing.TYPE_CHECKING:\n    from mapping import rules\n",
            "mapping/rules.py": "from mapping.engine import run\n",
        },
    )
    assert product_cycles(root) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("connector/admin/x.py", "from connector.sync.common import _helper\n", "common name _helper"),
        ("connector/sync/x.py", "def f():\n    from .common import _helper\n", "sync.common name _helper"),
        ("mapping/x.py", "from mapping.engine import run, _rounded\n", "mapping.engine name _rounded"),
    ],
)
def test_a_planted_private_import_is_reported(tmp_path, path, source, expected):
    root = plant(tmp_path, {path: source})
    offenders = private_imports(root)
    assert len(offenders) == 1, offenders
    assert offenders[0].startswith(f"{root / path}:") and offenders[0].endswith(expected)


def test_dunder_names_and_other_libraries_private_names_are_fine(tmp_path):
    root = plant(tmp_path, {"connector/x.py": "from connector import __version__\nfrom os import _exit\n"})
    assert private_imports(root) == []


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("def f():\n    from mapping import models\n", True),
        ("def f():\n    from mapping import models  # noqa: F401\n", True),
        (
            "def f():\n    # a cycle: mapping.models imports this module\n    from mapping import models\n",
            False,
        ),
        ("def f():\n    from mapping import models  # only when the sandbox is on\n", False),
        ("def f():\n    x = 1  # set up\n    from mapping import models\n", True),
        ("from mapping import models\n", False),
        ("class A:\n    def f(self):\n        if True:\n            import decimal\n", True),
        ("f = lambda: __import__('x')\nasync def g():\n    import decimal\n", True),
    ],
)
def test_a_planted_function_import_without_a_reason_is_reported(tmp_path, source, reported):
    root = plant(tmp_path, {"mapping/rules.py": source})
    offenders = unexplained_function_imports(root)
    imported = "decimal" if "decimal" in source else "mapping.models"
    line = source.count("\n")
    assert offenders == (
        [f"{root / 'mapping/rules.py'}:{line}: mapping.rules imports {imported}"] if reported else []
    )


# ---------------------------------------------------------------- pass 2 of .ci/run (docs/testing.md)

# What a test may touch only if it runs on PostgreSQL + Redis too: the drain, the inbox and its
# skip-locked claims, locks, token refresh, rate limits, transactions, migrations, the task queue.
BOTH_BACKENDS = (
    "connector.intake.drain",
    "connector.intake.inbox",
    "connector.locks",
    "connector.connections.oauth",
    "connector.limits",
    "django.db.transaction",
    "django.db.migrations",
    "django_q",
    "redis",
)
WORKER_FIXTURES = ("make_stack",)  # fixtures that start the connector's workers (tests/resilience)


def _test_functions_fixtures(path: Path) -> set[str]:
    """The argument names of the module's test functions (the fixtures they ask for)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.update(argument.arg for argument in [*node.args.args, *node.args.kwonlyargs])
    return names


def modules_needing_both_backends(root: Path) -> dict[Path, set[str]]:
    """Each test module (``tests/**/test_*.py``) that imports, itself or through the suite's helper
    modules (``tests.…``, conftest files left out), one of BOTH_BACKENDS, or asks for a worker fixture:
    what it touches."""
    imports_by_module: dict[str, set[str]] = defaultdict(set)
    for found in all_imports(root, ("tests",)):
        imports_by_module[found.importer].add(found.imported)
    modules = source_modules(root, ("tests",))
    needing = {}
    for module, path in modules.items():
        if not path.name.startswith("test_"):
            continue
        reached, todo = set(), [module]
        while todo:
            current = todo.pop()
            for imported in imports_by_module.get(current, ()):
                if imported not in reached:
                    reached.add(imported)
                    if imported in modules and not imported.endswith("conftest"):
                        todo.append(imported)
        touched = {name for name in reached if _within(name, BOTH_BACKENDS)}
        touched |= set(WORKER_FIXTURES) & _test_functions_fixtures(path)
        if touched:
            needing[path] = touched
    return needing


def unmarked_backend_tests(root: Path, runs_on_both) -> list[str]:
    """Each test module touching the database- or broker-dependent code that ``runs_on_both(path,
    fixtures)`` (the collection hook's rule) leaves out of pass 2."""
    return [
        f"{path.relative_to(root)}: touches {', '.join(sorted(touched))} but is not marked backend"
        for path, touched in sorted(modules_needing_both_backends(root).items())
        if not runs_on_both(path, _test_functions_fixtures(path))
    ]


def _hook_rule(path: Path, fixtures: set[str]) -> bool:
    return bool(tiers.backend_reasons(path, fixtures))


def test_every_test_touching_the_database_or_broker_runs_on_both_backends():
    offenders = unmarked_backend_tests(BASE, _hook_rule)
    assert offenders == [], "\n".join(offenders)
    assert len(modules_needing_both_backends(BASE)) >= 20  # the rule sees the suite (not an empty tree)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # through a helper module of the suite
            {
                "tests/connector/helpers.py": "from connector.locks import pair_lock\n",
                "tests/connector/test_x.py": "from tests.connector.helpers import something\n",
            },
            "tests/connector/test_x.py: touches connector.locks but is not marked backend",
        ),
        (  # inside a function, from the inbox package
            {"tests/test_x.py": "def test_a():\n    from connector.intake.inbox import claims\n"},
            "tests/test_x.py: touches connector.intake.inbox but is not marked backend",
        ),
        (  # a worker fixture
            {"tests/other/test_x.py": "def test_a(make_stack):\n    pass\n"},
            "tests/other/test_x.py: touches make_stack but is not marked backend",
        ),
    ],
)
def test_a_planted_unmarked_backend_test_is_reported(tmp_path, files, expected):
    root = plant(tmp_path, {"tests/__init__.py": "", "connector/locks.py": "", **files})
    assert unmarked_backend_tests(root, lambda path, fixtures: False) == [expected]
    assert unmarked_backend_tests(root, lambda path, fixtures: True) == []


def test_tests_touching_none_of_it_are_not_asked_to_run_twice(tmp_path):
    root = plant(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": "from connector.locks import pair_lock\n",  # conftest: not followed
            "tests/test_x.py": "from mapping.engine import run\nfrom tests import conftest\n",
        },
    )
    assert modules_needing_both_backends(root) == {}
