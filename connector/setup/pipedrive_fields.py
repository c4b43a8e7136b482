"""Pipedrive-side setup for a sync pair's mappings: the live field list (cached), the recommended custom
fields, the "Xero invoices" pipeline, and a preview of what a Xero record maps to (reads only).

The mapping admin calls these; the mapping app itself makes no HTTP calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction

from connector.connections.services import pipedrive_client, xero_client
from connector.errors import ValidationFailed
from connector.options import pair_options
from connector.sync.invoices import is_xero_id
from mapping.engine import map_deal, map_organization, map_persons, payment_state, stage_rule_for
from mapping.fields import is_custom_field_key, type_problem
from mapping.models import FieldMapping, StageMapping, Target, Transform
from mapping.rules import contact_context, deal_context, field_rules, stage_rules

logger = logging.getLogger(__name__)

FIELDS_CACHE_SECONDS = 300  # a field list costs 10 tokens; admin pages re-read it often
PIPELINE_NAME = "Xero invoices"
PIPELINE_STAGES = [
    "Draft",
    "Awaiting approval",
    "Awaiting payment",
    "Overdue",
    "Part paid",
    "Paid",
    "Voided",
]


@dataclass(frozen=True)
class Recommended:
    """A custom field the connector offers to create, and the rule that fills it."""

    target: str
    name: str
    field_type: str
    source_path: str
    transform: str
    options: dict = field(default_factory=dict)


RECOMMENDED_FIELDS = [
    Recommended("organization", "Xero ContactID", "varchar", "ContactID", Transform.TEXT),
    Recommended(
        "organization",
        "Xero outstanding",
        "monetary",
        "Balances.AccountsReceivable.Outstanding",
        Transform.MONEY,
    ),
    Recommended(
        "organization", "Xero overdue", "monetary", "Balances.AccountsReceivable.Overdue", Transform.MONEY
    ),
    # Cleared when no credit limit applies any more (an empty value would otherwise leave the old figure).
    Recommended(
        "organization",
        "Available credit",
        "monetary",
        "Connector.AvailableCredit",
        Transform.MONEY,
        {"clear_when_empty": True},
    ),
    Recommended("organization", "Over credit limit", "varchar", "Connector.OverCreditLimit", Transform.TEXT),
    Recommended("organization", "Xero link", "varchar", "Connector.XeroUrl", Transform.TEXT),
    Recommended("deal", "Xero InvoiceID", "varchar", "InvoiceID", Transform.TEXT),
    Recommended("deal", "Xero invoice number", "varchar", "InvoiceNumber", Transform.TEXT),
    Recommended("deal", "Xero amount due", "monetary", "AmountDue", Transform.MONEY),
    Recommended("deal", "Xero due date", "date", "DueDate", Transform.DATE),
    Recommended("deal", "Over credit limit", "varchar", "Connector.OverCreditLimit", Transform.TEXT),
    Recommended("deal", "Xero link", "varchar", "Connector.XeroUrl", Transform.TEXT),
]


def _cache_key(pair, target: str) -> str:
    return f"mapping:pd-fields:{pair.pipedrive_connection_id}:{target}"


def live_fields(pair, target: str, *, refresh: bool = False) -> list[dict]:
    """The Pipedrive company's fields for ``target``: [{key, name, field_type, is_custom, options}].

    Cached for a few minutes per Pipedrive connection; ``refresh`` reads them again."""
    key = _cache_key(pair, target)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    rows = pipedrive_client(pair.pipedrive_connection).all_fields(target)
    fields = [
        {
            "key": row.get("field_code"),
            "name": row.get("field_name") or row.get("field_code"),
            "field_type": row.get("field_type") or "",
            "is_custom": bool(row.get("is_custom_field")),
            "options": row.get("options"),
        }
        for row in rows
        if row.get("field_code")
    ]
    cache.set(key, fields, FIELDS_CACHE_SECONDS)
    return fields


def forget_live_fields(pair) -> None:
    cache.delete_many([_cache_key(pair, t) for t in Target.values])


def live_stages(pair) -> list[dict]:
    """Every stage with its pipeline: [{pipeline_id, pipeline_name, stage_id, stage_name}] (10 tokens)."""
    client = pipedrive_client(pair.pipedrive_connection)
    pipelines = {p["id"]: p["name"] for p in client.pipelines() or []}
    stages = sorted(client.stages() or [], key=lambda s: (s.get("pipeline_id"), s.get("order_nr") or 0))
    return [
        {
            "pipeline_id": s["pipeline_id"],
            "pipeline_name": pipelines.get(s["pipeline_id"], ""),
            "stage_id": s["id"],
            "stage_name": s["name"],
        }
        for s in stages
        if s.get("pipeline_id") in pipelines
    ]


def copy_default_rows(pair, target: str) -> int:
    """Give the pair its own rows for ``target`` (copies of the defaults) unless it has some already."""
    if FieldMapping.objects.filter(pair=pair, target=target).exists():
        return 0
    defaults = FieldMapping.objects.filter(pair__isnull=True, target=target).order_by("order", "id")
    copies = [
        FieldMapping(
            pair=pair,
            target=target,
            source_path=row.source_path,
            pipedrive_field=row.pipedrive_field,
            pipedrive_field_name=row.pipedrive_field_name,
            transform=row.transform,
            transform_options=dict(row.transform_options or {}),
            enabled=row.enabled,
            order=row.order,
        )
        for row in defaults
    ]
    FieldMapping.objects.bulk_create(copies)
    return len(copies)


def create_recommended_fields(pair) -> list[str]:
    """Create the recommended custom fields the Pipedrive company lacks (found by name first, so a second
    run creates nothing) and add the pair's rules that fill them. Returns the names created."""
    created = []
    client = pipedrive_client(pair.pipedrive_connection)
    for target in (Target.ORGANIZATION, Target.DEAL):
        wanted = [r for r in RECOMMENDED_FIELDS if r.target == target]
        existing = {f["name"].strip().casefold(): f for f in live_fields(pair, target, refresh=True)}
        resolved = []
        for rec in wanted:
            found = existing.get(rec.name.casefold())
            if found is None:
                row = client.add_field(target, {"field_name": rec.name, "field_type": rec.field_type})
                found = {"key": row["field_code"], "name": row["field_name"], "field_type": row["field_type"]}
                created.append(f"{target}: {rec.name}")
                logger.info("Created Pipedrive %s field %r for pair %s", target, rec.name, pair.pk)
            problem = type_problem(rec.transform, found["field_type"], f"{found['name']!r}")
            if problem:  # a same-named field of another type: leave it alone, map nothing into it
                logger.warning("Not mapping into %s field %r: %s", target, rec.name, problem)
                continue
            resolved.append((rec, found))
        with transaction.atomic():
            copy_default_rows(pair, target)
            rows = FieldMapping.objects.filter(pair=pair, target=target)
            mapped_keys = set(rows.values_list("pipedrive_field", flat=True))
            order = max([r.order for r in rows] or [0])
            for rec, found in resolved:
                if found["key"] in mapped_keys:
                    continue
                order += 10
                FieldMapping.objects.create(
                    pair=pair,
                    target=target,
                    source_path=rec.source_path,
                    pipedrive_field=found["key"],
                    pipedrive_field_name=found["name"],
                    transform=rec.transform,
                    transform_options={**rec.options, "field_type": found["field_type"]},
                    order=order,
                )
                mapped_keys.add(found["key"])
    forget_live_fields(pair)
    return created


def create_invoice_pipeline(pair) -> dict:
    """Make sure the "Xero invoices" pipeline and its stages exist (reusing them by name), then point the
    pair's stage mappings at them. Returns {pipeline_id, created: [names], mapped: count}."""
    client = pipedrive_client(pair.pipedrive_connection)
    created = []
    pipeline = next(
        (p for p in client.pipelines() or [] if p["name"].strip().casefold() == PIPELINE_NAME.casefold()),
        None,
    )
    if pipeline is None:
        pipeline = client.create_pipeline({"name": PIPELINE_NAME})
        created.append(PIPELINE_NAME)
    stages = {s["name"].strip().casefold(): s for s in client.stages(pipeline["id"]) or []}
    for name in PIPELINE_STAGES:
        if name.casefold() not in stages:
            stages[name.casefold()] = client.create_stage({"name": name, "pipeline_id": pipeline["id"]})
            created.append(f"{PIPELINE_NAME} / {name}")
    mapped = 0
    with transaction.atomic():
        for default in StageMapping.objects.filter(pair__isnull=True):
            row, _ = StageMapping.objects.get_or_create(
                pair=pair,
                kind=default.kind,
                xero_value=default.xero_value,
                defaults={
                    "pipeline_name": default.pipeline_name,
                    "stage_name": default.stage_name,
                    "deal_status": default.deal_status,
                    "lost_reason": default.lost_reason,
                    "enabled": default.enabled,
                },
            )
            stage = stages.get((row.stage_name or "").strip().casefold())
            points_here = row.stage_id is None or row.pipeline_id == pipeline["id"]
            if stage is not None and points_here:
                row.pipeline_id, row.pipeline_name = pipeline["id"], pipeline["name"]
                row.stage_id, row.stage_name = stage["id"], stage["name"]
                row.save()
                mapped += 1
    logger.info(
        "Invoice pipeline for pair %s: %s created, %s stage rows mapped", pair.pk, len(created), mapped
    )
    return {"pipeline_id": pipeline["id"], "created": created, "mapped": mapped}


# --- preview -------------------------------------------------------------------------------------


def recent_contacts(pair, count: int = 10) -> list[dict]:
    """The first few contacts of the pair's Xero tenant (one call), to pick one for a preview."""
    rows = xero_client(pair.xero_connection).get_contacts(page=1, page_size=count, summary_only=True)
    return [{"id": r.get("ContactID"), "name": r.get("Name") or ""} for r in rows[:count]]


def recent_invoices(pair, count: int = 10) -> list[dict]:
    """The first few sales invoices of the pair's Xero tenant (one call), to pick one for a preview."""
    rows = xero_client(pair.xero_connection).get_invoices(page=1, where='Type=="ACCREC"')
    return [
        {
            "id": r.get("InvoiceID"),
            "name": " · ".join(
                str(p) for p in (r.get("InvoiceNumber"), (r.get("Contact") or {}).get("Name")) if p
            ),
        }
        for r in rows[:count]
    ]


def _check_ids(**ids: str) -> None:
    """The id goes into the Xero URL path: only a GUID may (never a path or a query of the user's)."""
    for label, value in ids.items():
        if value and not is_xero_id(value):
            raise ValidationFailed(
                f"{value[:60]!r} is not a Xero {label}: paste the GUID from the record's Xero address "
                "(like 0a1b2c3d-…-…)."
            )


def _map_invoice(pair, invoice: dict, rules, contact_ctx: dict | None) -> dict:
    """The deal an invoice maps to with ``rules``, its payment state and stage rule."""
    value_from = pair_options(pair).deal_value_from
    state = payment_state(invoice)
    stage = stage_rule_for(stage_rules(pair), invoice.get("Status") or "", state)
    if contact_ctx is None:
        contact_ctx = contact_context(pair, invoice.get("Contact") or {})
    deal_open = not (stage and stage.deal_status in ("won", "lost"))
    dctx = deal_context(contact_ctx, invoice, deal_value=invoice.get(value_from), deal_open=deal_open)
    deal = map_deal(invoice, rules, dctx, value_from=value_from)
    return {"deal": deal, "payment_state": state, "stage": stage}


def preview(pair, *, contact_id: str = "", invoice_id: str = "") -> dict:
    """Fetch a Xero contact and/or invoice live and map it with the pair's rules. Writes nothing anywhere.

    Returns {"organization": Mapped, "persons": [(key, Mapped)], "deal": Mapped, "stage": StageMapping|None,
    "payment_state": str|None} for what was asked."""
    contact_id, invoice_id = (contact_id or "").strip(), (invoice_id or "").strip()
    _check_ids(ContactID=contact_id, InvoiceID=invoice_id)
    client = xero_client(pair.xero_connection)
    result: dict = {}
    ctx = None
    if contact_id:
        contact = client.get_contact(contact_id)
        ctx = contact_context(pair, contact)
        result["organization"] = map_organization(contact, field_rules(pair, Target.ORGANIZATION), ctx)
        result["persons"] = map_persons(contact, field_rules(pair, Target.PERSON), ctx)
    if invoice_id:
        invoice = client.get_invoice(invoice_id)
        result.update(_map_invoice(pair, invoice, field_rules(pair, Target.DEAL), ctx))
    return result


def preview_rule(pair, rule, *, record_id: str) -> dict:
    """What one rule (saved or not) puts into its Pipedrive field for a Xero contact (organization and
    person rules; the contact's first person) or invoice (deal rules). Reads Xero, writes nothing.

    Returns {"record": the record's name, "value": the field's value, "sent": whether the field is in
    the payload (a value, or a clearing null), "payload": the whole body with only this rule applied}."""
    record_id = (record_id or "").strip()
    if rule.target == Target.DEAL:
        _check_ids(InvoiceID=record_id)
        invoice = xero_client(pair.xero_connection).get_invoice(record_id)
        mapped = _map_invoice(pair, invoice, [rule], None)["deal"]
        name = f"Invoice {invoice.get('InvoiceNumber') or record_id}"
    else:
        _check_ids(ContactID=record_id)
        contact = xero_client(pair.xero_connection).get_contact(record_id)
        ctx = contact_context(pair, contact)
        name = contact.get("Name") or record_id
        if rule.target == Target.PERSON:
            persons = map_persons(contact, [rule], ctx)
            if not persons:
                return {"record": name, "value": None, "sent": False, "payload": {}}
            mapped = persons[0][1]
        else:
            mapped = map_organization(contact, [rule], ctx)
    key = rule.pipedrive_field
    body = mapped.payload.get("custom_fields", {}) if is_custom_field_key(key) else mapped.payload
    return {"record": name, "value": body.get(key), "sent": key in body, "payload": mapped.payload}
