#!/usr/bin/env python
"""Write mapping/xero_paths.json: the source paths a mapping rule may use, from Xero's OpenAPI spec.

Organization and person rules read a Contact (persons also a ContactPerson merged over it), deal rules an
Invoice. Lists appear as ``Name[]`` (any selector: ``[STREET]``, ``[0]``). Run after updating the spec:

    python scripts/xero_source_paths.py [path/to/xero_accounting.yaml]

tests/mapping/test_rules.py checks the committed file matches the vendored spec (specs/xero).
"""

import json
import sys
from pathlib import Path

from specs import parse_spec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "specs" / "xero" / "xero_accounting.yaml"
OUTPUT = ROOT / "mapping" / "xero_paths.json"
MAX_DEPTH = 2  # Invoice.Contact.Addresses[].City is deep enough; deeper paths are Xero internals


def _ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref") or ""
    return ref.rsplit("/", 1)[-1] if ref else None


def walk(schemas: dict, name: str, prefix: str = "", depth: int = 0, stack: tuple = ()) -> list[str]:
    paths = []
    for prop, schema in (schemas[name].get("properties") or {}).items():
        path = f"{prefix}{prop}"
        is_list = schema.get("type") == "array"
        target = _ref_name(schema.get("items") or {}) if is_list else _ref_name(schema)
        if is_list:
            path += "[]"
        paths.append(path)
        if target and target in schemas and target not in stack and depth < MAX_DEPTH:
            paths += walk(schemas, target, f"{path}.", depth + 1, (*stack, target))
    return paths


def build(spec_path: Path) -> dict:
    schemas = parse_spec(spec_path.read_text(encoding="utf-8"))["components"]["schemas"]
    contact = walk(schemas, "Contact", stack=("Contact",))
    person_extra = [p for p in walk(schemas, "ContactPerson", stack=("ContactPerson",)) if p not in contact]
    invoice = walk(schemas, "Invoice", stack=("Invoice",))
    return {
        "source": "XeroAPI/Xero-OpenAPI xero_accounting.yaml: schemas Contact, ContactPerson, Invoice",
        "organization": sorted(set(contact)),
        "person": sorted(set(contact) | set(person_extra)),
        "deal": sorted(set(invoice)),
    }


def main(argv: list[str]) -> None:
    spec = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    OUTPUT.write_text(json.dumps(build(spec), indent=1) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv)
