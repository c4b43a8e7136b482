"""Existing sync records get what the new columns need, where the rows already hold it.

- A contact's record: its ContactID (the timeline's key); its name from the organization "name" written
  when the audit kept it readable (``AUDIT_PERSONAL_DATA=full``); a masked name cannot be read back
  and stays as it is (the next sync of the contact names it).
- An invoice's record: its customer through the deal's ``org_id`` and the organization's link; the
  label "Invoice INV-0042" gets " · <customer>" when the customer's name is known.
- A payment's record: its customer through the note's ``deal_id`` and the invoice's link.

E-mail search keys are not backfilled: the values kept were masked (or none); the next sync adds them.
"""

from django.db import migrations

MASK = "•"
BATCH = 500


def _written(record, field):
    for row in record.fields_written or []:
        if row.get("field") == field:
            return row.get("new")
    return None


def _as_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def backfill(apps, schema_editor):
    SyncRecord = apps.get_model("audit", "SyncRecord")
    RecordLink = apps.get_model("mapping", "RecordLink")
    names: dict[tuple, str] = {}  # (pair id, ContactID lower) -> the customer's readable name

    for record in SyncRecord.objects.filter(xero_type="contact").order_by("id").iterator(BATCH):
        name = _written(record, "name")
        if isinstance(name, str) and name and MASK not in name:
            record.label = record.customer_name = name[:255]
        elif record.label and MASK not in record.label:
            record.customer_name = record.label
        if record.customer_name:
            names[(record.pair_id, record.xero_id.lower())] = record.customer_name
        record.contact_id = record.xero_id
        record.save(update_fields=["label", "customer_name", "contact_id"])

    def contact_of_organization(pair_id, org_id):
        link = RecordLink.objects.filter(
            pair_id=pair_id, xero_type="contact", pipedrive_type="organization", pipedrive_id=org_id
        ).first()
        return link.xero_id if link else ""

    invoice_contacts: dict[tuple, str] = {}  # (pair id, InvoiceID lower) -> ContactID
    for record in SyncRecord.objects.filter(xero_type="invoice").order_by("id").iterator(BATCH):
        org_id = _as_id(_written(record, "org_id"))
        contact_id = contact_of_organization(record.pair_id, org_id) if org_id else ""
        contact_id = contact_id or invoice_contacts.get((record.pair_id, record.xero_id.lower()), "")
        if not contact_id:
            continue
        invoice_contacts[(record.pair_id, record.xero_id.lower())] = contact_id
        _name(record, contact_id, names)

    for record in SyncRecord.objects.filter(xero_type="payment").order_by("id").iterator(BATCH):
        deal_id = _as_id(_written(record, "deal_id"))
        if not deal_id:
            continue
        link = RecordLink.objects.filter(
            pair_id=record.pair_id, xero_type="invoice", pipedrive_type="deal", pipedrive_id=deal_id
        ).first()
        contact_id = invoice_contacts.get((record.pair_id, link.xero_id.lower()), "") if link else ""
        if contact_id:
            _name(record, contact_id, names)


def _name(record, contact_id, names):
    record.contact_id = contact_id
    customer = names.get((record.pair_id, contact_id.lower()), "")
    if customer:
        record.customer_name = customer
        if record.label and customer not in record.label:
            record.label = f"{record.label} · {customer}"[:255]
    record.save(update_fields=["label", "customer_name", "contact_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_sync_record_names_and_triggers"),
        ("mapping", "0004_credit_rows_clear_without_limit"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
