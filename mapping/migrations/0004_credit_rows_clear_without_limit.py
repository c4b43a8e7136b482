"""Rules that write the connector's credit figures clear their field when no credit limit applies any
more (an empty value would otherwise leave the last figure in Pipedrive)."""

from django.db import migrations

CREDIT_FIGURES = ("Connector.AvailableCredit", "Connector.CreditLimit")


def clear_when_empty(apps, schema_editor):
    FieldMapping = apps.get_model("mapping", "FieldMapping")
    for row in FieldMapping.objects.filter(source_path__in=CREDIT_FIGURES):
        options = dict(row.transform_options or {})
        if "clear_when_empty" not in options:
            options["clear_when_empty"] = True
            row.transform_options = options
            row.save(update_fields=["transform_options"])


class Migration(migrations.Migration):
    dependencies = [("mapping", "0003_link_creating")]

    operations = [migrations.RunPython(clear_when_empty, migrations.RunPython.noop)]
