"""Default mapping rows (no sync pair): used by every pair without rows of its own for a target/kind.

Field defaults target standard fields only and only where they add something: name, e-mails, phones,
title, value and currency are built by the engine itself. Stage defaults name the stages of the
"Xero invoices" pipeline (created by the admin's "Create invoice pipeline"); ids are filled per pair.
"""

from django.db import migrations

PIPELINE = "Xero invoices"

FIELD_DEFAULTS = [
    # target, source path, Pipedrive field, field name, transform, options, order
    (
        "organization",
        "Addresses[STREET]",
        "address",
        "Address",
        "first_non_empty",
        {"sources": ["Addresses[STREET]", "Addresses[POBOX]"]},
        10,
    ),
    ("organization", "Website", "website", "Website", "text", {}, 20),
    ("deal", "DueDate", "expected_close_date", "Expected close date", "date", {}, 10),
]

STAGE_DEFAULTS = [
    # kind, Xero value, stage name, deal status, lost reason
    ("invoice_status", "DRAFT", "Draft", "", ""),
    ("invoice_status", "SUBMITTED", "Awaiting approval", "", ""),
    ("invoice_status", "AUTHORISED", "Awaiting payment", "open", ""),
    ("invoice_status", "PAID", "Paid", "won", ""),
    ("invoice_status", "VOIDED", "Voided", "lost", "Invoice voided in Xero"),
    ("invoice_status", "DELETED", "Voided", "lost", "Invoice deleted in Xero"),
    ("payment_state", "PART_PAID", "Part paid", "open", ""),
    ("payment_state", "PAID", "Paid", "won", ""),
]


def install(apps, schema_editor):
    FieldMapping = apps.get_model("mapping", "FieldMapping")
    StageMapping = apps.get_model("mapping", "StageMapping")
    for target, source, key, name, transform, options, order in FIELD_DEFAULTS:
        FieldMapping.objects.get_or_create(
            pair=None,
            target=target,
            source_path=source,
            pipedrive_field=key,
            defaults={
                "pipedrive_field_name": name,
                "transform": transform,
                "transform_options": options,
                "order": order,
            },
        )
    for kind, value, stage, status, reason in STAGE_DEFAULTS:
        StageMapping.objects.get_or_create(
            pair=None,
            kind=kind,
            xero_value=value,
            defaults={"pipeline_name": PIPELINE, "stage_name": stage, "deal_status": status, "lost_reason": reason},
        )


def remove(apps, schema_editor):
    FieldMapping = apps.get_model("mapping", "FieldMapping")
    StageMapping = apps.get_model("mapping", "StageMapping")
    for target, source, key, *_ in FIELD_DEFAULTS:
        FieldMapping.objects.filter(pair=None, target=target, source_path=source, pipedrive_field=key).delete()
    for kind, value, *_ in STAGE_DEFAULTS:
        StageMapping.objects.filter(pair=None, kind=kind, xero_value=value).delete()


class Migration(migrations.Migration):
    dependencies = [("mapping", "0001_rules_and_links")]

    operations = [migrations.RunPython(install, remove)]
