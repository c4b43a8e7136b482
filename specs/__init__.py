"""The official Xero and Pipedrive OpenAPI specs, vendored (provenance in each folder's SOURCE.md).

Every reader (sandbox token costs, contract tests, the source-path generator) finds them through
``spec_path`` so that the repository needs nothing beside it.
"""

import functools
from pathlib import Path

import yaml

SPECS_DIR = Path(__file__).resolve().parent

FILES = {
    ("xero", "accounting"): "xero/xero_accounting.yaml",
    ("xero", "identity"): "xero/xero-identity.yaml",
    ("xero", "webhooks"): "xero/xero-webhooks.yaml",
    ("pipedrive", "v1"): "pipedrive/openapi-v1.yaml",
    ("pipedrive", "v2"): "pipedrive/openapi-v2.yaml",
}


def spec_path(service: str, name: str) -> Path:
    """The file of one spec, e.g. ``spec_path("pipedrive", "v2")``; a KeyError names what exists."""
    try:
        return SPECS_DIR / FILES[(service, name)]
    except KeyError:
        raise KeyError(f"no vendored spec {service}/{name}; known: {sorted(FILES)}") from None


@functools.cache
def load_spec(service: str, name: str) -> dict:
    """The parsed spec (cached: the Pipedrive v1 file takes seconds to parse)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(spec_path(service, name).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
