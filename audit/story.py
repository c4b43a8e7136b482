"""A sync record told as a story for finance: what came in, what was sent, what came back, and what
to do next. Plain functions over a SyncRecord; the admin renders them."""

from dataclasses import dataclass

from django.db.models import Q

from audit.models import SyncRecord
from mapping.rules import pipedrive_url, xero_url

PIPEDRIVE_PATHS = {"organization": "organization", "person": "person", "deal": "deal", "note": "deal"}


def xero_link(record: SyncRecord) -> str:
    if record.xero_type == "payment":
        return ""  # Xero's web app shows a payment on its invoice
    return xero_url(record.xero_type, record.xero_id)


def pipedrive_link(record: SyncRecord) -> str:
    if not record.pipedrive_id or record.pair is None or record.pipedrive_type == "note":
        return ""
    connection = record.pair.pipedrive_connection
    kind = PIPEDRIVE_PATHS.get(record.pipedrive_type, record.pipedrive_type)
    # Only the validated subdomain is taken from the stored value (no scheme, no host of its own).
    return pipedrive_url(connection.company_domain, f"{kind}/{record.pipedrive_id}")


@dataclass
class NextStep:
    text: str
    link_label: str = ""
    link: str = ""  # an admin URL name or path the template reverses


def next_step(record: SyncRecord) -> NextStep:
    """What finance (or the integration admin) should do about this record."""
    reason = f"{record.reason} {record.error_message}".lower()
    if record.outcome in ("created", "updated", "unchanged"):
        return NextStep("Nothing: Pipedrive holds the current Xero record.")
    if record.outcome == "skipped":
        return NextStep("Nothing, unless the reason above is unexpected: it says why no write was needed.")
    if "stage" in reason or "pipeline" in reason:
        return NextStep(
            "Add or correct the stage mapping for this invoice status (or create the pipeline in Pipedrive), "
            "then replay.",
            "Stage mappings",
            "admin:mapping_stagemapping_changelist",
        )
    if "field" in reason and record.error_status in (400, 422):
        return NextStep(
            "Pipedrive refused a field value: check the field mappings for this record type, then replay.",
            "Field mappings",
            "admin:mapping_fieldmapping_changelist",
        )
    if "connection" in reason or record.error_class in ("ConnectionBroken", "AuthExpired"):
        return NextStep(
            "A connection needs reconnecting: ask your integration admin. Once it is back, replay.",
        )
    if (
        record.outcome == "deferred"
        or (record.error_status or 0) >= 500
        or record.error_class == "ServerError"
    ):
        return NextStep(
            "Xero or Pipedrive had a temporary problem. The connector tries again by itself; "
            "you can also replay now."
        )
    return NextStep("Read the reason above, fix it in Xero or in the mappings, then replay.")


def replay_chain(record: SyncRecord) -> list[SyncRecord]:
    """The replays of this record and of its replays, oldest first (a record replayed twice shows both)."""
    chain: list[SyncRecord] = []
    frontier = [record.pk]
    while frontier and len(chain) < 50:
        rows = list(SyncRecord.objects.filter(replay_of_id__in=frontier).order_by("id"))
        chain += rows
        frontier = [r.pk for r in rows]
    return chain


# --- The fields sent, as rows ----------------------------------------------------------


@dataclass
class FieldRow:
    """One field sent to Pipedrive as the story page shows it."""

    field: str  # the Pipedrive key (a custom field's 40-character hash)
    name: str  # the Pipedrive field's name ("Xero amount due"), or the key when none is known
    source: str  # the Xero field it came from (its path), or how the connector made it
    source_label: str  # that path in finance's words, when they differ
    mapping_id: int | None  # the FieldMapping row that produced it
    custom: bool
    before: object
    known_before: bool
    sent: object
    changed: bool


def field_rows(record: SyncRecord) -> list[FieldRow]:
    """``fields_written`` as rows: names resolved at write time, custom fields one row each."""
    rows = []
    for row in record.fields_written or []:
        key = str(row.get("field") or "")
        rows.append(
            FieldRow(
                field=key,
                name=str(row.get("name") or "") or key,
                source=str(row.get("source") or ""),
                source_label=str(row.get("source_label") or ""),
                mapping_id=row.get("mapping_id"),
                custom=bool(row.get("custom")),
                before=row.get("old"),
                known_before="old" in row,
                sent=row.get("new"),
                changed=bool(row.get("changed", row.get("old") != row.get("new"))),
            )
        )
    return rows


# --- A customer's timeline ---------------------------------------------------------------

TIMELINE_LIMIT = 500


def customer_records(pair_id, contact_id: str):
    """Every sync record of one customer: the contact (its organization and persons), its invoices and
    their payments, newest first."""
    return (
        SyncRecord.objects.filter(pair_id=pair_id)
        .filter(Q(contact_id__iexact=contact_id) | Q(xero_type="contact", xero_id__iexact=contact_id))
        .order_by("-finished_at", "-id")
    )


def customer_name(pair_id, contact_id: str) -> str:
    """The customer's name as last recorded (the newest record that names it)."""
    found = (
        customer_records(pair_id, contact_id)
        .exclude(customer_name="")
        .values_list("customer_name", flat=True)
        .first()
    )
    return found or ""
