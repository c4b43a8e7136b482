"""The official Xero and Pipedrive OpenAPI specs, vendored (provenance in each folder's SOURCE.md).

Every reader (sandbox token costs, contract tests, the source-path generator) finds them through
``spec_path`` so that the repository needs nothing beside it, and parses them with ``load_spec`` (or
``parse_spec``) so that each reads the same document: the spec's JSON equivalent.
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


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """YAML's safe loader without the YAML 1.1 timestamp resolver.

    OpenAPI documents are JSON: an unquoted ``example: 2019-11-14T18:10:38Z`` is the string JSON would
    carry, not a ``datetime`` (which JSON Schema validators and request generators such as schemathesis
    cannot handle: "Unsupported type: 'datetime'").
    """

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


def parse_spec(text: str) -> dict:
    """A spec's text parsed as its JSON equivalent (timestamps stay strings)."""
    return yaml.load(text, Loader=SpecLoader)  # noqa: S506 (a safe loader)


@functools.cache
def load_spec(service: str, name: str) -> dict:
    """The parsed spec (cached: the Pipedrive v1 file takes seconds to parse)."""
    return parse_spec(spec_path(service, name).read_text(encoding="utf-8"))
