"""Writing sync records: one per record sync, telling its story.

The sync services call ``record_sync`` (through ``connector.sync.common.audit``); whoever starts a
sync may wrap it in ``sync_cause`` (the drain passes the ids of the inbox events behind each record) or
``replay_cause`` (a replay: the records replayed, and the run), and ``record_sync`` adds those to
the rows written inside. This module knows nothing of the connector: it is handed plain values.
"""

import json
import re
import sys
import traceback as traceback_module
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audit.models import SyncRecord
from audit.redaction import redact
from mapping.rules import field_rules
from mapping.source_labels import source_label

# Xero webhook categories and the record types they sync.
CATEGORY_TYPES = {"CONTACT": "contact", "INVOICE": "invoice", "PAYMENT": "payment"}
TYPE_CATEGORIES = {value: key for key, value in CATEGORY_TYPES.items()}

PERSONAL_DATA_MODES = ("full", "masked", "none")
MAX_TEXT = 2000
MAX_TRACEBACK = 8000
MAX_VALUE = 500

# Payload keys the sync engine fills itself (not from mapping rows), and where their value comes from.
BUILT_IN_SOURCES = {
    "organization": {"name": "Name", "owner_id": "(pair setting)"},
    "person": {"name": "FirstName LastName", "emails": "EmailAddress", "phones": "Phones"},
    "deal": {
        "title": "(deal title template)",
        "value": "Total or AmountDue (deal value)",
        "currency": "CurrencyCode",
        "org_id": "Contact (its organization)",
        "person_id": "Contact (its person)",
        "stage_id": "Status (stage mapping)",
        "status": "Status (stage mapping)",
        "lost_reason": "Status (stage mapping)",
    },
    "note": {"content": "Amount, Date, Reference", "deal_id": "Invoice (its deal)"},
}

# Fields whose values are codes, ids or amounts, never personal: kept as they are in masked mode.
NOT_PERSONAL_FIELDS = {
    "status", "currency", "value", "stage_id", "pipeline_id", "org_id", "person_id", "deal_id",
    "owner_id", "expected_close_date", "visible_to", "lost_reason", "probability",
}  # fmt: skip
# Text that is not personal even in masked mode: dates, currency codes, Yes/No flags.
_NOT_PERSONAL = re.compile(r"^(\d{4}-\d{2}-\d{2}.*|[A-Z]{3}|Yes|No|)$")
_STATUS_IN_MESSAGE = re.compile(r"\b([1-5]\d\d)\b")


# --- What caused a sync ----------------------------------------------------------------


@dataclass
class Cause:
    """What a block of syncs was started by; read by ``record_sync`` for every row written inside."""

    trigger: str = ""
    trigger_text: str = ""  # the trigger in words ("credit limit changed by fiona"), shown on the record
    events: dict = field(default_factory=dict)  # (xero_type, id lower) -> [inbox event ids]
    attempts: dict = field(default_factory=dict)  # (xero_type, id lower) -> attempt number
    replays: dict = field(default_factory=dict)  # (xero_type, id lower) -> SyncRecord replayed
    replay_run: object = None
    written: list = field(default_factory=list)  # the SyncRecords written inside the block


_cause: ContextVar[Cause | None] = ContextVar("audit_sync_cause", default=None)


def _key(xero_type: str, xero_id) -> tuple[str, str]:
    return (xero_type, str(xero_id).lower())


@contextmanager
def _caused_by(cause: Cause):
    token = _cause.set(cause)
    try:
        yield cause
    finally:
        _cause.reset(token)


@contextmanager
def sync_cause(
    category: str, events: dict, attempts: dict | None = None, *, trigger: str = "", trigger_text: str = ""
):
    """The drain's syncs of ``category``: ``events`` maps each resource id to the ids of the inbox
    events behind it and ``attempts`` to the attempt number, both handed over by the caller, so
    each sync record names the events behind it (audit reads no inbox row). ``trigger`` and
    ``trigger_text`` (e.g. "overdue roll-over") name what started the block, on every row inside."""
    xero_type = CATEGORY_TYPES.get(str(category).upper(), str(category).lower())
    cause = Cause(trigger=trigger, trigger_text=trigger_text)
    for resource_id, event_ids in events.items():
        cause.events[_key(xero_type, resource_id)] = list(event_ids)
    for resource_id, attempt in (attempts or {}).items():
        cause.attempts[_key(xero_type, resource_id)] = attempt or 1
    with _caused_by(cause):
        yield cause


@contextmanager
def trigger_cause(trigger: str, trigger_text: str = ""):
    """Syncs started by ``trigger`` (a re-check, a roll-over pass): every row written inside names it.

    Inside another cause the events, attempts and replays of the outer block still apply and the rows
    are counted in its ``written``; the outer block's words win when it has some (a limit change that
    re-checks deals says "credit limit changed by …" on every deal, not the re-check's generic words)."""
    outer = _cause.get()
    cause = Cause(trigger=trigger, trigger_text=trigger_text)
    if outer is not None:
        cause.events, cause.attempts, cause.replays = outer.events, outer.attempts, outer.replays
        cause.replay_run, cause.written = outer.replay_run, outer.written
        if outer.trigger_text:
            cause.trigger, cause.trigger_text = outer.trigger or trigger, outer.trigger_text
    with _caused_by(cause):
        yield cause


@contextmanager
def replay_cause(records, replay_run=None):
    """Syncs replaying ``records``: the new rows say ``trigger=replay`` and link to the row replayed."""
    cause = Cause(trigger=SyncRecord.Trigger.REPLAY, replay_run=replay_run)
    for record in records:
        key = _key(record.xero_type, record.xero_id)
        cause.replays[key] = record
        cause.attempts[key] = (record.attempt or 1) + 1
    with _caused_by(cause):
        yield cause


# --- Values as stored ------------------------------------------------------------------


def personal_data_mode() -> str:
    mode = str(getattr(settings, "AUDIT_PERSONAL_DATA", "masked")).lower()
    return mode if mode in PERSONAL_DATA_MODES else "masked"


def mask_text(text: str) -> str:
    """ "Acme Trading Ltd" → "A••• T•••••• L••": enough to recognise, not enough to read."""
    return " ".join(word[:1] + "•" * min(len(word) - 1, 8) for word in str(text).split(" "))


def stored_value(value, mode: str | None = None):
    """A field value as the audit keeps it under ``AUDIT_PERSONAL_DATA``; secrets are always redacted."""
    mode = mode or personal_data_mode()
    if mode == "none":
        return None
    if isinstance(value, dict | list):
        if mode == "masked":
            value = _mask_structure(value)
        text = json.dumps(value, default=str, ensure_ascii=False)
        return redact_secrets(text)[:MAX_VALUE]
    if isinstance(value, str):
        value = redact_secrets(value)[:MAX_VALUE]
        if mode == "masked" and not _NOT_PERSONAL.match(value):
            return mask_text(value)
    return value


def _mask_structure(value):
    if isinstance(value, dict):
        return {k: _mask_structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_structure(v) for v in value]
    if isinstance(value, str) and not _NOT_PERSONAL.match(value):
        return mask_text(value)
    return value


def redact_secrets(text: str) -> str:
    return redact(text)


def record_label(xero_type: str, source: dict | None) -> str:
    """The name finance knows the Xero record by, as Pipedrive shows it: the contact's name, the invoice
    number with the customer, the payment's amount with its invoice and customer. Readable under every
    ``AUDIT_PERSONAL_DATA`` setting (the payload's values are what that setting protects)."""
    return record_subject(xero_type, source)["label"]


def _contact_of(xero_type: str, source: dict) -> dict:
    if xero_type == "contact":
        return source
    if xero_type == "payment":
        return (source.get("Invoice") or {}).get("Contact") or {}
    return source.get("Contact") or {}


def record_subject(xero_type: str, source: dict | None) -> dict:
    """What names a sync record and finds it: ``label``, ``customer_name`` and ``contact_id`` (the
    customer's Xero ContactID, for the timeline) and ``email_keys`` (keyed hashes of its e-mails)."""
    subject = {"label": "", "customer_name": "", "contact_id": "", "email_keys": ""}
    if not source:
        return subject
    contact = _contact_of(xero_type, source)
    customer = str(contact.get("Name") or "").strip()
    subject["customer_name"] = customer
    subject["contact_id"] = str(contact.get("ContactID") or "")
    subject["email_keys"] = email_keys_text(record_emails(xero_type, source))
    with_customer = f" · {customer}" if customer else ""
    if xero_type == "contact":
        subject["label"] = customer
    elif xero_type == "invoice":
        number = source.get("InvoiceNumber") or source.get("Reference") or ""
        subject["label"] = f"Invoice {number}{with_customer}" if number else customer
    elif xero_type == "payment":
        invoice = source.get("Invoice") or {}
        amount = source.get("Amount")
        number = invoice.get("InvoiceNumber") or ""
        text = f"Payment {amount}" if amount is not None else "Payment"
        subject["label"] = (f"{text} on invoice {number}" if number else text) + with_customer
    return subject


def record_emails(xero_type: str, source: dict) -> list[str]:
    """The e-mail addresses a Xero record carries: the contact's and its contact persons'."""
    contact = _contact_of(xero_type, source)
    found = [contact.get("EmailAddress")]
    found += [person.get("EmailAddress") for person in contact.get("ContactPersons") or []]
    return [str(address) for address in found if address and "@" in str(address)]


def email_key(address: str) -> str:
    """A keyed hash of an e-mail address (HMAC-SHA256, its key derived from ``SECRET_KEY``): the same
    address always gives the same key, and the key does not give the address back. Case and outer
    spaces do not count."""
    normalised = str(address).strip().lower()
    return salted_hmac("audit.SyncRecord.email_keys", normalised, algorithm="sha256").hexdigest()


def email_keys_text(addresses) -> str:
    """The ``email_keys`` column: " key1 key2 " (spaces around each, so a search matches whole keys).
    Nothing is kept when ``AUDIT_PERSONAL_DATA`` is "none"."""
    if personal_data_mode() == "none":
        return ""
    keys = list(dict.fromkeys(email_key(a) for a in addresses if a))
    return f" {' '.join(keys)} " if keys else ""


def looks_like_email(text: str) -> bool:
    return bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(text).strip()))


def payload_size(payload) -> int:
    """Bytes of ``payload`` as sent (compact JSON)."""
    if payload is None:
        return 0
    return len(json.dumps(payload, separators=(",", ":"), default=str).encode())


def _mapped_sources(pair, target: str) -> dict:
    try:
        return {rule.pipedrive_field: rule for rule in field_rules(pair, target)}
    except Exception:  # a mapping problem must never stop the audit row
        return {}


def _rule_facts(pipedrive_type: str, rule) -> dict:
    """A mapping rule (a FieldMapping row, or only its source path as text) as the row keeps it: the
    Xero source, its words, the Pipedrive field's name and the row's id (the story page links it)."""
    if isinstance(rule, str):
        return {"source": rule}
    path = str(getattr(rule, "source_path", "") or "")
    facts = {"source": path, "name": str(getattr(rule, "pipedrive_field_name", "") or "")}
    try:
        label = source_label(pipedrive_type, path) if path else ""
    except Exception:  # an unusual path must never stop the audit row
        label = ""
    if label and label != path:
        facts["source_label"] = label
    if getattr(rule, "pk", None):
        facts["mapping_id"] = rule.pk
    return facts


def _before_values(previous: SyncRecord | None) -> dict:
    """{(custom?, field): value sent last time}; a custom_fields blob of an older row read per field."""
    before: dict = {}
    if previous is None:
        return before
    for row in previous.fields_written or []:
        key = row.get("field")
        if row.get("custom"):
            before[(True, key)] = row.get("new")
        elif key == "custom_fields" and isinstance(row.get("new"), str):
            try:
                blob = json.loads(row["new"])
            except ValueError:
                blob = None
            if isinstance(blob, dict):
                before.update({(True, k): v for k, v in blob.items()})
        else:
            before[(False, key)] = row.get("new")
    return before


def fields_written(
    pair, pipedrive_type: str, payload: dict | None, previous: SyncRecord | None, mapped_sources=None
) -> list[dict]:
    """Field by field what was sent: the Pipedrive field (a custom field's hash, with its name), its
    Xero source and the mapping row that produced it, the value before (from the last record that
    wrote this field, when there is one), the value sent and whether it changed. Each custom field is a
    row of its own (``"custom": true``). ``mapped_sources`` ({Pipedrive field: FieldMapping row, or its
    Xero source path}): the rules the sync mapped with, when it has them (read once per run)."""
    if not isinstance(payload, dict):
        return []
    mode = personal_data_mode()
    if mapped_sources is None:
        mapped_sources = _mapped_sources(pair, pipedrive_type)
    sources = {**BUILT_IN_SOURCES.get(pipedrive_type, {}), **mapped_sources}
    before = _before_values(previous)
    items = [(False, key, value) for key, value in payload.items() if key != "custom_fields"]
    custom = payload.get("custom_fields")
    if isinstance(custom, dict):
        items += [(True, key, value) for key, value in custom.items()]
    elif "custom_fields" in payload:
        items.append((False, "custom_fields", custom))
    rows = []
    for is_custom, key, value in items:
        new = stored_value(value, "full" if mode == "masked" and key in NOT_PERSONAL_FIELDS else mode)
        facts = _rule_facts(pipedrive_type, sources.get(key, ""))
        row = {"field": key, **facts, "new": new}
        if is_custom:
            row["custom"] = True
        if (is_custom, key) in before:
            row["old"] = before[(is_custom, key)]
            row["changed"] = row["old"] != new
        else:
            row["changed"] = True  # first written by this sync (or nothing known before it)
        rows.append(row)
    return rows


def error_details(error: BaseException | None) -> dict:
    """The error class, the service's status and message, and the traceback, redacted."""
    if error is None:
        return {}
    message = str(getattr(error, "message", "") or error)
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if status is None:
        found = _STATUS_IN_MESSAGE.search(message)
        status = int(found.group(1)) if found else None
    trace = "".join(traceback_module.format_exception(type(error), error, error.__traceback__))
    return {
        "error_class": type(error).__name__[:100],
        "error_status": status if isinstance(status, int) else None,
        "error_message": redact_secrets(message)[:MAX_TEXT],
        "traceback": redact_secrets(trace)[-MAX_TRACEBACK:],
    }


def previous_record(
    pair, xero_type: str, xero_id, pipedrive_type: str = "", *, any_record: bool = True
) -> SyncRecord | None:
    """The last record of this Xero record that wrote fields (for the "old" values and the label);
    when none did, the last record of it at all (``any_record``; only its label can serve then)."""
    rows = SyncRecord.objects.filter(pair=pair, xero_type=xero_type, xero_id=str(xero_id))
    if pipedrive_type:
        rows = rows.filter(pipedrive_type=pipedrive_type)
    found = rows.exclude(fields_written=[]).order_by("-id").first()
    if found is None and any_record:
        found = rows.order_by("-id").first()
    return found


def record_sync(*, pair, xero_type, xero_id, outcome, started_at=None, payload=None, source=None,
                error=None, trigger=None, mapped_sources=None, **fields) -> SyncRecord:  # fmt: skip
    """Store one record sync. ``payload`` (what was sent) is kept field by field under
    ``AUDIT_PERSONAL_DATA``, never whole; ``source`` (the Xero record) gives the label, the customer
    and the e-mail keys; ``error`` (or the exception being handled) the failure details;
    ``mapped_sources`` see ``fields_written``; ``trigger_text`` (optional) the trigger in words."""
    xero_id = str(xero_id)
    pipedrive_type = fields.get("pipedrive_type", "")
    cause = _cause.get()
    key = _key(xero_type, xero_id)
    if error is None and outcome in ("failed", "deferred"):
        error = sys.exc_info()[1]
    label = fields.pop("label", "")
    # A record that never wrote fields gives only its label: not looked up when the source names it.
    any_record = not label and not source
    previous = (
        previous_record(pair, xero_type, xero_id, pipedrive_type, any_record=any_record)
        if pair is not None
        else None
    )
    subject = record_subject(xero_type, source)
    if not source and previous is not None:  # not fetched: the names last known
        subject = {name: getattr(previous, name) for name in subject}
    if not label:
        label = subject["label"]
    if xero_type == "contact" and not subject["contact_id"]:
        subject["contact_id"] = xero_id
    extra = {}
    trigger_text = str(fields.pop("trigger_text", "") or "")
    if cause is not None:
        if cause.trigger:
            trigger = cause.trigger
        if cause.trigger_text and not trigger_text:
            trigger_text = cause.trigger_text
        if key in cause.events:
            extra["inbox_event_ids"] = cause.events[key]
        if key in cause.attempts:
            extra["attempt"] = cause.attempts[key]
        if key in cause.replays:
            extra["replay_of"] = cause.replays[key]
        if cause.replay_run is not None:
            extra["replay_run"] = cause.replay_run
    if "reason" in fields:
        fields["reason"] = redact_secrets(str(fields["reason"] or ""))[:MAX_TEXT]
    record = SyncRecord.objects.create(
        pair=pair,
        xero_type=xero_type,
        xero_id=xero_id,
        label=label[:255],
        customer_name=subject["customer_name"][:255],
        contact_id=subject["contact_id"][:200],
        email_keys=subject["email_keys"],
        outcome=outcome,
        trigger=(trigger or SyncRecord.Trigger.WEBHOOK)[:40],
        trigger_text=redact_secrets(trigger_text)[:255],
        started_at=started_at or timezone.now(),
        payload_size=payload_size(payload),
        fields_written=fields_written(pair, pipedrive_type, payload, previous, mapped_sources),
        **error_details(error if outcome in ("failed", "deferred") else None),
        **{**extra, **fields},
    )
    if cause is not None:
        cause.written.append(record)
    return record
