"""What the mapping knows about Pipedrive fields without asking Pipedrive: the standard fields rules may
target, their types, value limits, and which transform suits which field type. Pure data and checks."""

import re

# Standard (non-custom) fields a rule may target, per target: key -> (name, type as the engine treats it).
# "value" on a deal is monetary in Pipedrive's field list but takes a plain number in the deal body.
STANDARD_FIELDS = {
    "organization": {
        "name": ("Name", "varchar"),
        "address": ("Address", "address"),
        "website": ("Website", "varchar"),
    },
    "person": {
        "name": ("Name", "varchar"),
        "emails": ("Email", "emails"),
        "phones": ("Phone", "phones"),
        "job_title": ("Job title", "varchar"),
    },
    "deal": {
        "title": ("Title", "varchar"),
        "value": ("Value", "double"),
        "currency": ("Currency", "varchar"),
        "expected_close_date": ("Expected close date", "date"),
    },
}

# Pipedrive's limits (openapi-v2.yaml, field_type table): varchar, varchar_auto and phone hold up to 255
# characters, text "up to 65k"; names and titles 255. Longer values are trimmed, never refused.
VARCHAR_LIMIT = 255
TEXT_LIMIT = 65_000
LIMITS = {"varchar": VARCHAR_LIMIT, "varchar_auto": VARCHAR_LIMIT, "phone": VARCHAR_LIMIT, "text": TEXT_LIMIT}

CUSTOM_FIELD_KEY = re.compile(r"^[0-9a-f]{40}$")

TEXT_TYPES = {"varchar", "varchar_auto", "text", "phone", "address", "emails", "phones"}
# Which Pipedrive field types each transform may feed. Anything else is refused on save.
COMPATIBLE_TYPES = {
    "text": TEXT_TYPES,
    "join": TEXT_TYPES,
    "first_non_empty": TEXT_TYPES | {"double", "date"},
    "number": {"double", "int"},
    "money": {"monetary"},
    "date": {"date"},
    # A lookup table may translate to option ids (enum/set), numbers or text.
    "lookup": TEXT_TYPES | {"enum", "set", "double", "int"},
}


def is_custom_field_key(key: str) -> bool:
    return bool(CUSTOM_FIELD_KEY.match(key or ""))


def standard_field_type(target: str, key: str) -> str | None:
    entry = STANDARD_FIELDS.get(target, {}).get(key)
    return entry[1] if entry else None


def type_problem(transform: str, field_type: str, field_label: str) -> str | None:
    """Why ``transform`` cannot feed a field of ``field_type`` (None when it can)."""
    allowed = COMPATIBLE_TYPES.get(transform)
    if allowed is None:
        return f"Unknown transform {transform!r}."
    if field_type not in allowed:
        return (
            f"The transform {transform!r} cannot fill {field_label}, a field of type {field_type!r} "
            f"(it suits: {', '.join(sorted(allowed))})."
        )
    return None
