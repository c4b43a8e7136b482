"""Boundaries from docs/architecture.md that code review alone would let slip."""

import ast
from pathlib import Path

from django.conf import settings

PRODUCT_APPS = ["config", "connector", "mapping", "audit"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_product_app_imports_the_sandbox():
    offenders = []
    for app in PRODUCT_APPS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            if any(name == "sandbox" or name.startswith("sandbox.") for name in imported_modules(path)):
                offenders.append(str(path.relative_to(settings.BASE_DIR)))
    assert offenders == [], f"these import the sandbox, which only tests and demos may use: {offenders}"


def test_mapping_makes_no_http_calls():
    for path in (Path(settings.BASE_DIR) / "mapping").rglob("*.py"):
        names = imported_modules(path)
        assert not {"requests", "urllib3", "http.client"} & names, f"{path} imports an HTTP client"
