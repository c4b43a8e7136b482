"""The import directions of docs/architecture.md, checked on the source (every import in the file,
at the top or inside a function, absolute or relative), and the checker shown able to fail."""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

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
    "audit": Rule(
        "audit's models and services import nothing from connector",
        ("audit.models", "audit.services"),
        ("connector",),
    ),
    "http": Rule("mapping makes no HTTP calls", ("mapping",), HTTP_CLIENTS),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int

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


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in the file, wherever it stands; relative imports resolved against ``module``.

    ``from package import name`` counts as importing ``package.name`` when that is a module,
    otherwise ``package``.
    """
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join(part for part in [*anchor, base] if part)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(Import(module, candidate if candidate in known else base, path, node.lineno))
    return found


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


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Groups of modules of ``package`` (a dotted name) that import one another, directly or not."""
    top = package.split(".")[0]
    modules = {name for name in source_modules(root, (top,)) if _within(name, (package,))}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for found in all_imports(root, (top,)):
        if found.importer in modules and found.imported in modules:
            edges[found.importer].add(found.imported)
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

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
                cycles.append(sorted(group))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return cycles


# ---------------------------------------------------------------- the project


def test_no_product_app_imports_the_sandbox():
    assert forbidden_imports(BASE, RULES["sandbox"]) == []


def test_mapping_imports_nothing_from_connector_or_audit():
    offenders = forbidden_imports(BASE, RULES["mapping"])
    assert offenders == [], "\n".join(offenders)


def test_audit_models_and_services_import_nothing_from_connector():
    assert forbidden_imports(BASE, RULES["audit"]) == []


def test_mapping_makes_no_http_calls():
    assert forbidden_imports(BASE, RULES["http"]) == []


def test_no_import_cycle_among_the_sync_modules():
    assert import_cycles(BASE, "connector.sync") == []


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
