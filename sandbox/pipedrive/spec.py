"""The emulated Pipedrive checks requests against the official spec and completes its answers from it.

Query parameters and JSON bodies are checked against the operation's declared types (integers within
64 bits, numbers, booleans, strings, dates, enums, arrays and their items) before a view runs, so a
malformed request is a 400 in Pipedrive's envelope and never reaches the database. Answers carry every
field the spec lists for the object, null where the sandbox has nothing.
"""

import datetime as dt
import functools
import math

from specs import load_spec

INT64 = 2**63 - 1


class SpecError(Exception):
    """A request that does not match the spec: the message says which parameter and why."""


def _resolve(spec: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


@functools.cache
def operation(version: str, spec_path: str, method: str) -> dict | None:
    spec = load_spec("pipedrive", version)
    found = spec["paths"].get(spec_path, {}).get(method.lower())
    return _resolve(spec, found) if found else None


@functools.cache
def _parameters(version: str, spec_path: str, method: str) -> dict[str, dict]:
    op = operation(version, spec_path, method) or {}
    spec = load_spec("pipedrive", version)
    params = {}
    for param in op.get("parameters", []):
        param = _resolve(spec, param)
        if param.get("in") == "query":
            params[param["name"]] = _resolve(spec, param.get("schema", {}))
    return params


@functools.cache
def body_schema(version: str, spec_path: str, method: str) -> dict | None:
    op = operation(version, spec_path, method) or {}
    spec = load_spec("pipedrive", version)
    content = _resolve(spec, op.get("requestBody", {})).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return _resolve(spec, schema) if schema else None


def _kind(schema: dict) -> str | None:
    return schema.get("type")


def check_value(value, schema: dict, name: str, version: str) -> None:
    """``value`` (already JSON-decoded) against ``schema``; raises SpecError."""
    spec = load_spec("pipedrive", version)
    schema = _resolve(spec, schema)
    if value is None:
        if schema.get("nullable"):
            return
        raise SpecError(f"{name} must not be null")
    kind = _kind(schema)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT64:
            raise SpecError(f"{name} must be an integer")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SpecError(f"{name} must be a number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise SpecError(f"{name} must be a boolean")
    elif kind == "string":
        if not isinstance(value, str):
            raise SpecError(f"{name} must be a string")
        if schema.get("format") == "date":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise SpecError(f"{name} must be a date (YYYY-MM-DD)") from None
    elif kind == "array":
        if not isinstance(value, list):
            raise SpecError(f"{name} must be an array")
        for index, item in enumerate(value):
            check_value(item, schema.get("items", {}), f"{name}[{index}]", version)
    elif kind == "object":
        if not isinstance(value, dict):
            raise SpecError(f"{name} must be an object")
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                check_value(value[key], sub, f"{name}.{key}", version)
    if "enum" in schema and value not in schema["enum"]:
        raise SpecError(f"{name} must be one of {', '.join(map(str, schema['enum']))}")


def _query_value(raw: str, schema: dict, name: str):
    kind = _kind(schema)
    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise SpecError(f"{name} must be an integer") from None
        if abs(value) > INT64:
            raise SpecError(f"{name} is out of range")
        return value
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise SpecError(f"{name} must be a number") from None
        if not math.isfinite(value):
            raise SpecError(f"{name} must be a number")
        return value
    if kind == "boolean":
        if raw not in ("true", "false", "1", "0"):
            raise SpecError(f"{name} must be true or false")
        return raw in ("true", "1")
    return raw


def check_query(version: str, spec_path: str, method: str, params) -> None:
    """Every declared query parameter present in ``params`` has the declared type (and enum)."""
    for name, schema in _parameters(version, spec_path, method).items():
        raw = params.get(name)
        if raw in (None, ""):
            continue
        value = _query_value(raw, schema, name)
        # String enums take comma-separated lists (fields=name,email; status=open,won).
        values = value.split(",") if isinstance(value, str) else [value]
        if "enum" in schema and not all(v in schema["enum"] for v in values):
            raise SpecError(f"{name} must be one of {', '.join(map(str, schema['enum']))}")


def check_body(version: str, spec_path: str, method: str, body) -> None:
    """A JSON body against the operation's request schema: an object, its declared fields typed."""
    schema = body_schema(version, spec_path, method)
    if schema is None:
        return
    if not isinstance(body, dict):
        raise SpecError("The body must be a JSON object")
    for key, sub in (schema.get("properties") or {}).items():
        if key in body:
            check_value(body[key], sub, key, version)


@functools.cache
def response_fields(version: str, spec_path: str, method: str = "get") -> tuple[str, ...]:
    """The fields of the object an operation answers with (``data``), in the spec's order.

    Fields only sent when asked for through ``include_fields`` are left out, as Pipedrive does.
    """
    op = operation(version, spec_path, method) or {}
    spec = load_spec("pipedrive", version)
    schema = _resolve(spec, op.get("responses", {}).get("200", {}))
    schema = _resolve(spec, schema.get("content", {}).get("application/json", {}).get("schema", {}))
    data = {}
    for part in [schema, *schema.get("allOf", [])]:
        part = _resolve(spec, part)
        data = _resolve(spec, (part.get("properties") or {}).get("data", {})) or data
    if data.get("type") == "array":
        data = _resolve(spec, data.get("items", {}))
    fields = []
    for part in [data, *data.get("allOf", [])]:
        for key, sub in (_resolve(spec, part).get("properties") or {}).items():
            if "include_fields" not in (sub.get("description") or ""):
                fields.append(key)
    return tuple(dict.fromkeys(fields))


def complete(data: dict, version: str, spec_path: str) -> dict:
    """``data`` with every field the spec lists for it, null where the sandbox has no value."""
    return {**dict.fromkeys(response_fields(version, spec_path)), **data}
