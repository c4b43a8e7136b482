"""Token cost of every Pipedrive operation, read once from the official specs' ``x-token-cost``."""

import functools
import logging
from pathlib import Path

import yaml
from django.conf import settings

logger = logging.getLogger(__name__)

SPEC_FILES = {"v2": "openapi-v2.yaml", "v1": "openapi-v1.yaml"}
METHODS = {"get", "post", "put", "patch", "delete"}


def spec_dir() -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "specs" / "pipedrive"


@functools.cache
def table() -> dict[tuple[str, str, str], int]:
    """(api version, METHOD, spec path) -> tokens, e.g. ("v2", "GET", "/deals/{id}") -> 1."""
    costs: dict[tuple[str, str, str], int] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for version, name in SPEC_FILES.items():
        path = spec_dir() / name
        if not path.exists():
            logger.warning("Pipedrive spec %s not found: using the documented default costs", path)
            continue
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (safe loader)
        for spec_path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if method in METHODS and isinstance(operation, dict) and "x-token-cost" in operation:
                    costs[(version, method.upper(), spec_path)] = int(operation["x-token-cost"])
    return costs


def _fallback(version: str, method: str, spec_path: str) -> int:
    # pipedrive-api.md §4.1, used only when the spec files are absent; v1 costs twice v2.
    if method == "GET":
        base = 20 if "search" in spec_path.lower() else (1 if spec_path.endswith("}") else 10)
    else:
        base = {"DELETE": 3}.get(method, 5)
    return base * (2 if version == "v1" else 1)


def cost(version: str, method: str, spec_path: str) -> int:
    found = table().get((version, method, spec_path))
    return _fallback(version, method, spec_path) if found is None else found
