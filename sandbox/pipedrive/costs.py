"""Token cost of every Pipedrive operation, read once from the official specs' ``x-token-cost``."""

import functools

from specs import load_spec

SPEC_VERSIONS = ("v2", "v1")
METHODS = {"get", "post", "put", "patch", "delete"}


@functools.cache
def table() -> dict[tuple[str, str, str], int]:
    """(api version, METHOD, spec path) -> tokens, e.g. ("v2", "GET", "/deals/{id}") -> 1."""
    costs: dict[tuple[str, str, str], int] = {}
    for version in SPEC_VERSIONS:
        spec = load_spec("pipedrive", version)
        for spec_path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if method in METHODS and isinstance(operation, dict) and "x-token-cost" in operation:
                    costs[(version, method.upper(), spec_path)] = int(operation["x-token-cost"])
    return costs


def _fallback(version: str, method: str, spec_path: str) -> int:
    # Pipedrive's documented default costs, for an emulated operation the spec does not list; v1 costs
    # twice v2.
    if method == "GET":
        base = 20 if "search" in spec_path.lower() else (1 if spec_path.endswith("}") else 10)
    else:
        base = {"DELETE": 3}.get(method, 5)
    return base * (2 if version == "v1" else 1)


def cost(version: str, method: str, spec_path: str) -> int:
    found = table().get((version, method, spec_path))
    return _fallback(version, method, spec_path) if found is None else found
