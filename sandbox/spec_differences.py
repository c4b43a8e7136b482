"""Where the real Xero and Pipedrive APIs differ from their official OpenAPI specs, in one place.

The emulators follow the real APIs. The contract and fuzz tests check every answer against the
vendored specs (``specs/``) as ``served_spec`` adjusts them with the differences below, each with the
reason we believe the real API behaves that way. Anything not listed here must match the spec.
"""

import copy

from specs import load_spec

# Pipedrive v2 response fields the real API sends as null when empty although the spec omits
# ``nullable``: Pipedrive's own examples and answers carry them as null ("won_time": null on an open
# deal, "picture_id": null on a person without one), and a client built from the spec must read them.
PIPEDRIVE_NULL_IN_RESPONSES = {
    "owner_id",
    "person_id",
    "org_id",
    "stage_change_time",
    "won_time",
    "lost_time",
    "expected_close_date",
    "origin",
    "first_name",
    "last_name",
    "picture_id",
    "postal_address",
    "notes",
    "im",
    "birthday",
    "job_title",
    "address",
    "website",
    "linkedin",
    "industry",
    "annual_revenue",
    "employee_count",
    "days_to_rotten",
    "subfields",
    "options",
    "description",  # a custom field added without one: the request schema itself allows null
    "next_cursor",  # the spec's own descriptions say it "will be null" on the last page
}

DIFFERENCES = [
    (
        "pipedrive",
        "v2 objects carry every listed field, null when empty, though the spec marks most non-nullable",
        "Pipedrive's documented examples and live answers send null (see PIPEDRIVE_NULL_IN_RESPONSES)",
    ),
    (
        "pipedrive",
        "next_cursor is null on the last page",
        "the spec's own description says so; most schemas forgot nullable",
    ),
]


def _nullable(node, names: set[str]) -> None:
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name in names & set(properties):
                if isinstance(properties[name], dict) and "$ref" not in properties[name]:
                    properties[name]["nullable"] = True
        for value in node.values():
            _nullable(value, names)
    elif isinstance(node, list):
        for value in node:
            _nullable(value, names)


def served_spec(service: str, name: str) -> dict:
    """A deep copy of the vendored spec with the documented differences of the real API applied."""
    document = copy.deepcopy(load_spec(service, name))
    if service == "pipedrive":
        for operations in document["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _nullable(operation["responses"], PIPEDRIVE_NULL_IN_RESPONSES)
        _nullable(document.get("components", {}).get("schemas", {}), {"next_cursor"})
    return document
