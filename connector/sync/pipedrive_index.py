"""The local index of a Pipedrive company's organizations and persons: matching without search calls.

A search costs 20 tokens, listing 500 records 10. So the contacts sync matches Xero contacts
against this index (normalized organization name, person e-mails, the organization's Xero
ContactID field) and searches only when the index cannot answer (never filled, or a refresh
failed). The index is filled by listing (once, then records updated since the last listing when
older than ``PIPEDRIVE_INDEX_MAX_AGE_HOURS``, in full every ``PIPEDRIVE_INDEX_FULL_DAYS``) and
kept fresh by the connector's own writes (``record_entry``) and by Pipedrive webhooks
(``observe_pipedrive_event``). A record deleted in Pipedrive that the index still names costs
nothing extra: the write to it answers 404 and the sync creates it anew.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from connector.errors import AuthExpired, BudgetExhausted, ConnectionBroken, ConnectorError, RateLimited
from connector.limits import budget
from connector.locks import named_lock
from connector.models import PipedriveIndexEmail, PipedriveIndexEntry, PipedriveIndexState
from mapping.engine import normalize_email, normalize_org_name

logger = logging.getLogger(__name__)

ORGANIZATION, PERSON = PipedriveIndexEntry.Entity.ORGANIZATION, PipedriveIndexEntry.Entity.PERSON
# The organization field holding the Xero ContactID, found by name (letters and digits, casefolded).
CONTACT_ID_FIELD_NAMES = {"xerocontactid", "xerocontactsid", "contactidxero"}
LIST_COST = 10  # tokens per page of up to 500 records
FIELDS_COST = 10
# Problems no other call would get past: they end the whole sync run.
BATCH_ERRORS = (RateLimited, BudgetExhausted, ConnectionBroken, AuthExpired)


def _fold(text: str) -> str:
    return re.sub(r"[\W_]+", "", (text or "").casefold())


def person_name_key(name: str) -> str:
    return " ".join((name or "").casefold().split())


def _rfc3339(moment) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _max_age() -> timedelta:
    return timedelta(hours=int(getattr(settings, "PIPEDRIVE_INDEX_MAX_AGE_HOURS", 24)))


def _full_age() -> timedelta:
    return timedelta(days=int(getattr(settings, "PIPEDRIVE_INDEX_FULL_DAYS", 7)))


# --- Keys of one record ----------------------------------------------------------------


def _emails(record: dict) -> list[str]:
    # v2 "emails"; v1 (webhooks) "email"; each [{value, primary, label}] or plain strings.
    raw = record.get("emails") if record.get("emails") is not None else record.get("email")
    values = []
    for item in raw or []:
        value = item.get("value") if isinstance(item, dict) else item
        email = normalize_email(value)
        if email and email not in values:
            values.append(email)
    return values


def _custom_value(record: dict, key: str) -> str:
    if not key:
        return ""
    custom = record.get("custom_fields")
    value = custom.get(key) if isinstance(custom, dict) else None
    if value is None:
        value = record.get(key)  # v1 bodies carry custom fields at the top level
    return str(value).strip().lower() if value not in (None, "") else ""


def _org_id(record: dict):
    value = record.get("org_id")
    if isinstance(value, dict):  # v1 nests {value: id, name: ...}
        value = value.get("value")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _values(entity: str, record: dict, contact_id_field: str) -> dict:
    name = str(record.get("name") or "")[:255]
    add_time = (
        parse_datetime(str(record.get("add_time") or "").replace(" ", "T"))
        if record.get("add_time")
        else None
    )
    if add_time is not None and timezone.is_naive(add_time):
        add_time = timezone.make_aware(add_time, dt.UTC)
    if entity == ORGANIZATION:
        return {
            "name": name,
            "name_key": normalize_org_name(name)[:255],
            "xero_contact_id": _custom_value(record, contact_id_field)[:64],
            "org_id": None,
            "add_time": add_time,
        }
    return {
        "name": name,
        "name_key": person_name_key(name)[:255],
        "xero_contact_id": "",
        "org_id": _org_id(record),
        "add_time": add_time,
    }


def _contact_id_field(connection) -> str:
    return (
        PipedriveIndexState.objects.filter(connection=connection)
        .values_list("contact_id_field", flat=True)
        .first()
        or ""
    )


def record_entry(connection, entity: str, record: dict, contact_id_field: str | None = None):
    """Put (or refresh) one organization or person in the index, e.g. after the connector wrote it."""
    if entity not in (ORGANIZATION, PERSON) or not record or not record.get("id"):
        return None
    if record.get("is_deleted") or record.get("active_flag") is False:
        forget(connection, entity, record["id"])
        return None
    field = _contact_id_field(connection) if contact_id_field is None else contact_id_field
    values = _values(entity, record, field)
    keys = {"connection": connection, "entity": entity, "record_id": int(record["id"])}
    try:
        with transaction.atomic():
            entry, _ = PipedriveIndexEntry.objects.update_or_create(**keys, defaults=values)
    except IntegrityError:  # another worker indexed it at the same moment
        PipedriveIndexEntry.objects.filter(**keys).update(**values, indexed_at=timezone.now())
        entry = PipedriveIndexEntry.objects.get(**keys)
    if entity == PERSON:
        with transaction.atomic():
            entry.emails.all().delete()
            PipedriveIndexEmail.objects.bulk_create(
                [PipedriveIndexEmail(entry=entry, email=email[:255]) for email in _emails(record)]
            )
    return entry


def forget(connection, entity: str, record_id) -> None:
    PipedriveIndexEntry.objects.filter(connection=connection, entity=entity, record_id=record_id).delete()


def observe_pipedrive_event(connection, entity: str, action: str, record_id, current: dict | None) -> None:
    """Keep the index true to a Pipedrive webhook (v1 or v2): a deleted or merged-away record leaves it,
    a created or changed one is (re)indexed from ``current`` (the record as the webhook carries it).

    ``entity`` "organization"/"person" (others ignored); ``action`` create/change/delete (v2) or
    added/updated/deleted/merged (v1).
    """
    known = {"org": ORGANIZATION, "organization": ORGANIZATION, "person": PERSON}.get(str(entity).lower())
    if known is None or not record_id:
        return
    entity = known
    if str(action).lower() in ("delete", "deleted", "merged") or not current:
        if str(action).lower() in ("delete", "deleted", "merged"):
            forget(connection, entity, record_id)
        return
    record_entry(connection, entity, {**current, "id": current.get("id") or record_id})


# --- Filling --------------------------------------------------------------------------------


def find_contact_id_field(fields: list[dict]) -> str:
    """The key of the organization field named like "Xero ContactID" in a live field list, or ""."""
    for field in fields or []:
        name = field.get("field_name") or field.get("name") or ""
        if _fold(name) in CONTACT_ID_FIELD_NAMES:
            return field.get("field_code") or field.get("key") or ""
    return ""


def _fill_entity(connection, client, entity: str, since, contact_id_field: str, started) -> int:
    """List the company's records (all, or those updated since ``since``) page by page into the index:
    one page of 500 in memory at a time, however large the company."""
    params = {"updated_since": _rfc3339(since)} if since else {}
    listed, cursor = 0, None
    while True:
        records, cursor = client.list(entity, cursor=cursor, limit=500, **params)
        page = {int(r["id"]): r for r in records if r.get("id") and not r.get("is_deleted")}
        _store_page(connection, entity, page, contact_id_field)
        listed += len(page)
        if not cursor:
            break
    if since is None:
        # A full listing touched every record it showed (indexed_at ≥ started): the others are gone
        # (entries indexed after the listing started come from concurrent writes of ours and stay).
        PipedriveIndexEntry.objects.filter(
            connection=connection, entity=entity, indexed_at__lt=started
        ).delete()
    return listed


def _store_page(connection, entity: str, listed: dict, contact_id_field: str) -> None:
    if not listed:
        return
    rows = PipedriveIndexEntry.objects.filter(connection=connection, entity=entity)
    existing = dict(rows.filter(record_id__in=list(listed)).values_list("record_id", "id"))
    new, changed = [], []
    for record_id, record in listed.items():
        values = _values(entity, record, contact_id_field)
        if record_id in existing:
            changed.append(PipedriveIndexEntry(id=existing[record_id], record_id=record_id, **values))
        else:
            new.append(
                PipedriveIndexEntry(connection=connection, entity=entity, record_id=record_id, **values)
            )
    now = timezone.now()
    for entry in changed:
        entry.indexed_at = now
    fields = ["name", "name_key", "xero_contact_id", "org_id", "add_time", "indexed_at"]
    with transaction.atomic():
        PipedriveIndexEntry.objects.bulk_update(changed, fields, batch_size=500)
        PipedriveIndexEntry.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    if entity == PERSON:
        ids = dict(rows.filter(record_id__in=list(listed)).values_list("record_id", "id"))
        with transaction.atomic():
            PipedriveIndexEmail.objects.filter(entry_id__in=list(ids.values())).delete()
            PipedriveIndexEmail.objects.bulk_create(
                [
                    PipedriveIndexEmail(entry_id=ids[record_id], email=email[:255])
                    for record_id, record in listed.items()
                    if record_id in ids
                    for email in _emails(record)
                ],
                batch_size=500,
            )


def _fresh(state, contact_id_field: str | None, now) -> bool:
    if state.refreshed_at is None or state.filled_at is None:
        return False
    if contact_id_field is not None and contact_id_field != state.contact_id_field:
        return False  # the ContactID field changed: every organization's value must be re-read
    return now - state.refreshed_at < _max_age()


def ensure_index(connection, client, *, contact_id_field: str | None = None, urgent: bool = False):
    """Make the company's index ready to answer; returns its state, or None when it cannot answer.

    ``contact_id_field``: the organization field holding the Xero ContactID when the pair's mapping
    rules name it (None: find it by name in the live fields at the next full listing). One worker
    lists at a time; the others wait and then use its result. Whole-run problems (budget, rate
    limits, broken connection) propagate; any other failure leaves the index unable to answer.
    """
    try:
        with transaction.atomic():
            state, _ = PipedriveIndexState.objects.get_or_create(connection=connection)
    except IntegrityError:  # another worker created the row between our read and our insert
        state = PipedriveIndexState.objects.get(connection=connection)
    if _fresh(state, contact_id_field, timezone.now()):
        return state
    with named_lock(f"pipedrive-index:{connection.pk}"):
        state.refresh_from_db()
        started = timezone.now()
        if _fresh(state, contact_id_field, started):
            return state
        full = (
            state.filled_at is None
            or started - state.filled_at >= _full_age()
            or (contact_id_field is not None and contact_id_field != state.contact_id_field)
        )
        try:
            field = contact_id_field
            budget.check_budget(
                connection.company_id, 2 * LIST_COST + (FIELDS_COST if field is None else 0), urgent=urgent
            )
            if field is None:
                field = (
                    find_contact_id_field(client.fields("organization")) if full else state.contact_id_field
                )
            # a filled index has been refreshed; without a refresh time, list everything (clock skew margin)
            refreshed = state.refreshed_at
            since = None if full or refreshed is None else refreshed - timedelta(minutes=5)
            organizations = _fill_entity(connection, client, ORGANIZATION, since, field, started)
            persons = _fill_entity(connection, client, PERSON, since, field, started)
        except BATCH_ERRORS:
            raise
        except ConnectorError as exc:
            logger.warning("Pipedrive index of %s not refreshed: %s", connection, exc)
            state.last_error = str(exc)[:1000]
            state.save(update_fields=["last_error"])
            return None
        state.contact_id_field = field or ""
        state.refreshed_at = started
        if full:
            state.filled_at = started
        state.last_error = ""
        state.save()
        logger.info(
            "Pipedrive index of %s %s: %s organizations, %s persons listed",
            connection,
            "filled" if full else "refreshed",
            organizations,
            persons,
        )
        return state


# --- Lookups --------------------------------------------------------------------------------


def organizations_by_contact_id(connection, contact_id: str) -> list[PipedriveIndexEntry]:
    if not contact_id:
        return []
    return list(
        PipedriveIndexEntry.objects.filter(
            connection=connection, entity=ORGANIZATION, xero_contact_id=str(contact_id).lower()
        ).order_by("add_time", "record_id")
    )


def organizations_by_name(connection, name: str) -> list[PipedriveIndexEntry]:
    """Organizations whose normalized name equals ``name``'s, oldest first."""
    key = normalize_org_name(name)
    if not key:
        return []
    return list(
        PipedriveIndexEntry.objects.filter(
            connection=connection, entity=ORGANIZATION, name_key=key[:255]
        ).order_by("add_time", "record_id")
    )


def persons_by_email(connection, email: str) -> list[PipedriveIndexEntry]:
    email = normalize_email(email)
    if not email:
        return []
    return list(
        PipedriveIndexEntry.objects.filter(connection=connection, entity=PERSON, emails__email=email)
        .distinct()
        .order_by("add_time", "record_id")
    )


def persons_by_name_in_organization(connection, name: str, org_id) -> list[PipedriveIndexEntry]:
    key = person_name_key(name)
    if not key or not org_id:
        return []
    return list(
        PipedriveIndexEntry.objects.filter(
            connection=connection, entity=PERSON, name_key=key[:255], org_id=org_id
        ).order_by("add_time", "record_id")
    )
