"""Xero contacts → a Pipedrive organization and its persons.

Per contact, under the record's writer lock: map with the pair's rules, match the organization
(record link → the index by the Xero ContactID field → the index by normalized name → a search
only when the index cannot answer → create), write it unless the payload is the one last
written, link it; then each person (link → the index by e-mail, or by name within the
organization → create), with ``org_id`` set. One audit row per contact covers the organization
and its persons (the reason lists what happened to each).

Archived and GDPR-request contacts follow the pair option ``archived_contacts``:
``"leave"`` synced like any other contact, nothing marked or cleared; ``"mark"`` (default) the
organization's name carries " [archived in Xero]" or " [GDPR request in Xero]"; ``"clear"`` the
linked persons become "(removed)" with no e-mails or phones (links kept, no new persons).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from django.utils import timezone

from connector.connections.services import pipedrive_client, xero_client
from connector.errors import ConnectorError, NotFound
from connector.options import pair_options
from connector.sync import credit, ledger, pipedrive_index
from connector.sync.common import (
    RETRY_ERRORS,
    Outcomes,
    RecordOutcome,
    audit,
    get_link,
    mark_creating,
    record_lock,
    retry_outcome,
    save_link,
    write_record,
)
from connector.sync.pipedrive_index import BATCH_ERRORS, ORGANIZATION, PERSON
from mapping.engine import map_organization, map_persons, normalize_email, normalize_org_name, payload_hash
from mapping.models import CreditLimit, RecordLink
from mapping.rules import contact_context, credit_limit_for, field_rules

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # Xero's GET /Contacts?IDs= takes up to 100 ids per call
ARCHIVED_STATUSES = {"ARCHIVED": " [archived in Xero]", "GDPRREQUEST": " [GDPR request in Xero]"}
REMOVED_NAME = "(removed)"
NAME_LIMIT = 255


_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sync_contacts(
    pair,
    ids: list[str],
    *,
    trigger: str = "webhook",
    fetched: dict[str, dict] | None = None,
    on_outcome=None,
) -> dict[str, RecordOutcome]:
    """Sync these Xero contacts as Xero has them now; ``{ContactID: RecordOutcome}``.
    ``fetched``, when given, receives the contacts read from Xero (by ContactID) for the caller's reuse.

    Contacts are fetched 100 per call. An id Xero does not return is "ignored" (not "failed"):
    the contact was deleted or belongs to another organisation, and no retry would change that.
    One contact's failure is its outcome; RateLimited, BudgetExhausted, ConnectionBroken and
    AuthExpired end the run.
    """
    run = ContactSync(pair, trigger=trigger)
    outcomes = Outcomes(on_outcome)
    wanted = []
    for contact_id in dict.fromkeys(str(i).strip() for i in ids):
        if _GUID.match(contact_id):
            wanted.append(contact_id)
        else:  # Xero would refuse the whole batch for one malformed id
            outcomes[contact_id] = run.not_found(contact_id, "Not a Xero ContactID")
    for batch in _chunks(wanted, BATCH_SIZE):
        contacts = run.xero.get_contacts(ids=batch, include_archived=True)
        by_id = {str(c.get("ContactID", "")).lower(): c for c in contacts}
        ledger.remember_contacts(pair, contacts)
        if fetched is not None:
            fetched.update({str(c["ContactID"]): c for c in contacts if c.get("ContactID")})
        for contact_id in batch:
            contact = by_id.get(contact_id.lower())
            if contact is None:
                outcomes[contact_id] = run.not_found(contact_id)
            else:
                outcomes[contact_id] = run.sync_one(contact)
    return outcomes


class ContactSync:
    """One run of the contacts sync: the pair's clients, rules and index, read once per run."""

    def __init__(self, pair, *, trigger: str = "webhook", xero=None, pipedrive=None):
        self.pair = pair
        self.trigger = trigger
        self.connection = pair.pipedrive_connection
        self.xero = xero or xero_client(pair.xero_connection)
        self.pipedrive = pipedrive or pipedrive_client(self.connection)
        self.options = pair_options(pair)
        self.archived_rule = self.options.archived_contacts
        self.org_rules = field_rules(pair, "organization")
        self.person_rules = field_rules(pair, "person")
        # A rule writing ContactID into an organization field names the field to match by.
        mapped = [r.pipedrive_field for r in self.org_rules if r.source_path.strip() == "ContactID"]
        self.contact_id_field = mapped[0] if mapped else None
        self._index = None
        self._index_checked = False
        self._credit_limits: list[CreditLimit] | None = None

    # --- the index ------------------------------------------------------------------------
    @property
    def index(self):
        """The index state when it can answer (filled once per run, on first need), else None."""
        if not self._index_checked:
            self._index = pipedrive_index.ensure_index(
                self.connection,
                self.pipedrive,
                contact_id_field=self.contact_id_field,
                urgent=self.trigger == "webhook",
            )
            self._index_checked = True
            if self._index is not None and self.contact_id_field is None:
                self.contact_id_field = self._index.contact_id_field or None
        return self._index

    # --- one contact -----------------------------------------------------------------------
    def not_found(self, contact_id: str, reason: str = "") -> RecordOutcome:
        reason = reason or "Not found in Xero (deleted, or not a contact of this organisation)"
        audit(self.pair, "contact", contact_id, action="skipped", started_at=timezone.now(),
              trigger=self.trigger, pipedrive_type="organization", reason=reason)  # fmt: skip
        return RecordOutcome("ignored", reason, action="skipped")

    def sync_one(self, contact: dict) -> RecordOutcome:
        contact_id = str(contact["ContactID"])
        started = timezone.now()
        self._last_payload: dict | None = None
        self._last_fields: Sequence[str] = ()
        self.index  # noqa: B018 (fill the index before taking the record lock: one lock at a time)
        notes: list[str] = []
        error: Exception | None = None
        try:
            with record_lock(self.pair, "contact", contact_id):
                outcome = self._sync_locked(contact, notes)
        except BATCH_ERRORS:
            raise
        except RETRY_ERRORS as exc:
            error, reason = exc, f"{type(exc).__name__}: {exc}"[:1000]
            logger.warning("Contact %s not synced, to retry: %s", contact_id, reason)
            outcome = retry_outcome(reason)
            notes.append(reason)
        except Exception as exc:  # one bad record fails alone; the batch goes on
            error, reason = exc, f"{type(exc).__name__}: {exc}"[:1000]
            if isinstance(exc, ConnectorError):
                logger.warning("Contact %s not synced: %s", contact_id, reason)
            else:
                logger.exception("Contact %s not synced: %s", contact_id, reason)
            outcome = RecordOutcome("failed", reason, action="failed")
            notes.append(reason)
        audit(self.pair, "contact", contact_id, action=outcome.action, started_at=started,
              trigger=self.trigger, pipedrive_type="organization", pipedrive_id=outcome.pipedrive_id,
              reason="; ".join(notes), payload=self._last_payload,
              fields_mapped=self._last_fields, source=contact, error=error,
              rules=self.org_rules)  # fmt: skip
        return outcome

    def _sync_locked(self, contact: dict, notes: list[str]) -> RecordOutcome:
        contact_id = str(contact["ContactID"])
        status = str(contact.get("ContactStatus") or "ACTIVE").upper()
        flagged = status in ARCHIVED_STATUSES and self.archived_rule != "leave"
        # One read of the link (under the record's lock) answers both: linked, or a create in flight.
        found = get_link(self.pair, "contact", contact_id, "organization")
        link = found if found and found.state == RecordLink.State.LINKED and found.pipedrive_id else None

        if link:
            existing_id, last_hash = link.pipedrive_id, link.payload_hash
        elif found is not None and found.state == RecordLink.State.CREATING:
            # An earlier create's answer was lost: the index has not seen what it made; search for
            # the name that create sent (and the Xero name, should a rule have changed it since).
            sent = self._name_to_send(contact, status, flagged)
            names = [sent, contact.get("Name") or ""]
            existing_id, last_hash = self._search_organization(contact, sent, notes, names=names), ""
        else:
            existing_id, last_hash = self.match_organization(contact, contact.get("Name") or "", notes), ""
        limit = self._credit_limit(contact, existing_id)
        context = contact_context(self.pair, contact, limit, limits=self._credit_limit_rows())

        mapped = map_organization(contact, self.org_rules, context)
        payload = dict(mapped.payload)
        if flagged and self.archived_rule == "mark":
            marker = ARCHIVED_STATUSES[status]
            payload["name"] = payload["name"][: NAME_LIMIT - len(marker)] + marker
            notes.append(f"{status.lower()} in Xero: organization marked")
        self._last_payload, self._last_fields = payload, mapped.fields_mapped
        digest = payload_hash(payload)
        row = found  # this link's row, read or made under the record's lock
        if existing_id is None:
            row = mark_creating(self.pair, "contact", contact_id, "organization", absent=found is None)
        write = write_record(self.pipedrive, "organization", payload, digest,
                             existing_id=existing_id, last_hash=last_hash)  # fmt: skip
        if write.action != "unchanged" or link is None:
            save_link(self.pair, "contact", contact_id, "organization", write.pipedrive_id, digest, link=row)
        if write.record:
            pipedrive_index.record_entry(self.connection, ORGANIZATION, write.record, self._index_field())
        notes.insert(0, f"organization {write.pipedrive_id} {write.action}")

        person_actions = self._sync_persons(
            contact, write.pipedrive_id, context, flagged and self.archived_rule == "clear"
        )
        if person_actions:
            counts: dict[str, int] = {}
            for action in person_actions:
                counts[action] = counts.get(action, 0) + 1
            notes.append("persons: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
        action = write.action
        if action == "unchanged" and any(a != "unchanged" for a in person_actions):
            action = "updated"
        return RecordOutcome("done", "; ".join(notes), pipedrive_id=write.pipedrive_id, action=action)

    def _name_to_send(self, contact: dict, status: str, flagged: bool) -> str:
        """The organization name a create for this contact sends (rules and archive marker applied)."""
        context = contact_context(self.pair, contact, None, limits=self._credit_limit_rows())
        mapped = map_organization(contact, self.org_rules, context)
        name = str(mapped.payload.get("name") or contact.get("Name") or "")
        if flagged and self.archived_rule == "mark":
            marker = ARCHIVED_STATUSES[status]
            name = name[: NAME_LIMIT - len(marker)] + marker
        return name

    def _credit_limit(self, contact: dict, org_id):
        """The contact's limit: the Pipedrive organization's field (when the pair keeps limits there and
        it holds one), else the connector's own rows, read once per run."""
        limit = self._pipedrive_credit_limit(org_id)
        if limit is None:
            limit = credit_limit_for(self.pair, contact, limits=self._credit_limit_rows())
        return limit

    def _credit_limit_rows(self) -> list:
        if self._credit_limits is None:
            self._credit_limits = list(CreditLimit.objects.filter(pair=self.pair))
        return self._credit_limits

    def _pipedrive_credit_limit(self, org_id):
        """The limit sales keep in the organization field named by option ``credit_limit_field`` (1 token)."""
        field = self.options.credit_limit_field
        if not field or not org_id:
            return None
        try:
            record = self.pipedrive.get("organization", org_id)
        except NotFound:
            return None
        return credit.organization_limit(self.pair, record)

    def _index_field(self) -> str:
        return self.contact_id_field or ""

    # --- matching the organization ---------------------------------------------------------
    # The public matching interface: the backfill's preview calls match_organization / match_person
    # and its BackfillContactSync overrides the two hooks linked_elsewhere and pick_by_name.
    def linked_elsewhere(self, pipedrive_type: str, pipedrive_ids, xero_type: str, xero_id: str) -> set[int]:
        """Hook: which of these Pipedrive records already belong to another Xero record of this pair."""
        rows = RecordLink.objects.filter(
            pair=self.pair, pipedrive_type=pipedrive_type, pipedrive_id__in=list(pipedrive_ids),
            xero_type=xero_type, state=RecordLink.State.LINKED,
        ).exclude(xero_id=xero_id)  # fmt: skip
        return {pid for pid in rows.values_list("pipedrive_id", flat=True) if pid is not None}

    def match_organization(self, contact: dict, name: str, notes: list[str]) -> int | None:
        """The Pipedrive organization this contact is (by its ContactID field, then by name), or None."""
        contact_id = str(contact["ContactID"])
        if self.index is None:
            return self._search_organization(contact, name, notes)
        by_id = pipedrive_index.organizations_by_contact_id(self.connection, contact_id)
        if by_id:
            notes.append(f"matched organization {by_id[0].record_id} by its Xero ContactID field")
            return by_id[0].record_id
        candidates = pipedrive_index.organizations_by_name(self.connection, contact.get("Name") or name)
        return self.pick_by_name(contact_id, candidates, notes)

    def pick_by_name(self, contact_id: str, candidates, notes: list[str]) -> int | None:
        """Hook: of the organizations with the contact's name, the oldest not linked elsewhere, or None."""
        taken = self.linked_elsewhere(
            "organization", [c.record_id for c in candidates], "contact", contact_id
        )
        free = [
            c
            for c in candidates
            if c.record_id not in taken and (not c.xero_contact_id or c.xero_contact_id == contact_id.lower())
        ]
        if not free:
            return None
        chosen = free[0]  # candidates come oldest first
        note = f"matched organization {chosen.record_id} by normalized name {chosen.name_key!r}"
        if len(free) > 1:
            others = ", ".join(str(c.record_id) for c in free[1:])
            note += f" (oldest of {len(free)}; also {others})"
        notes.append(note)
        return chosen.record_id

    def _search_organization(
        self, contact: dict, name: str, notes: list[str], names: list[str] | None = None
    ) -> int | None:
        """Ask Pipedrive (20 tokens a page): by the ContactID field when one is mapped, else by name.

        ``names``: the exact names to look for (after a lost create: the name it sent). Without them
        (the index cannot answer), the first word of the contact's name, broadly, so other spellings
        ("ACME Ltd" for "Acme Limited") are seen. Every page of a search is read: a match among many
        similar names is never missed."""
        contact_id = str(contact["ContactID"])
        if self.contact_id_field:
            found = self.pipedrive.search_field("organization", self.contact_id_field, contact_id)
            if found:
                notes.append(f"matched organization {found[0]['id']} by its Xero ContactID field (search)")
                return int(found[0]["id"])
        terms = [t.strip() for t in (names or [contact.get("Name") or name]) if t and t.strip()]
        wanted = {normalize_org_name(t) for t in terms} - {""}
        if not wanted:
            return None
        items = []
        if names:
            for term in dict.fromkeys(terms):
                items += self.pipedrive.search_organizations(term, fields="name", exact_match=True)
        else:
            items = self.pipedrive.search_organizations(terms[0].split()[0], fields="name", exact_match=False)
        chosen = self.pick_by_name(contact_id, self._name_candidates(items, wanted), notes)
        notes.append(
            "searched Pipedrive" if self.index is not None else "index unavailable: searched Pipedrive"
        )
        return chosen

    def _name_candidates(self, items: list[dict], wanted: set[str]):
        """The found organizations whose normalized name is wanted, oldest first, each once."""
        entries = {}
        for item in items:
            if normalize_org_name(item.get("name") or "") in wanted:
                entry = pipedrive_index.record_entry(self.connection, ORGANIZATION, item, self._index_field())
                if entry:
                    entries[entry.record_id] = entry
        return sorted(entries.values(), key=lambda c: (c.add_time is None, c.add_time, c.record_id))

    # --- persons ---------------------------------------------------------------------------
    def _sync_persons(self, contact: dict, org_id: int, context: dict, clear: bool) -> list[str]:
        contact_id = str(contact["ContactID"])
        if clear:
            return self._clear_persons(contact_id, org_id)
        actions = []
        person_context = {"XeroUrl": context.get("XeroUrl")}
        persons = map_persons(contact, self.person_rules, person_context)
        current = {f"{contact_id}:{key}"[:200] for key, _ in persons}
        # Links of this contact's persons whose key (e-mail) Xero no longer has: an e-mail changed.
        stale = {
            link.pipedrive_id: link
            for link in self._person_links(contact_id)
            if link.xero_id not in current and link.pipedrive_id
        }
        for key, mapped in persons:
            xero_id = f"{contact_id}:{key}"[:200]
            payload = {**mapped.payload, "org_id": org_id}
            digest = payload_hash(payload)
            found = get_link(self.pair, "contact_person", xero_id, "person")
            link = found if found and found.state == RecordLink.State.LINKED and found.pipedrive_id else None
            moved = None  # the old e-mail's link, dropped only once the write under the new key succeeded
            if link:
                existing_id, last_hash = link.pipedrive_id, link.payload_hash
            else:
                search = found is not None and found.state == RecordLink.State.CREATING
                existing_id, last_hash = self.match_person(xero_id, key, payload, org_id, search=search), ""
                if existing_id is None and stale:
                    moved = self._same_person_new_key(payload["name"], org_id, stale)
                    existing_id = moved.pipedrive_id if moved else None
                if existing_id is None:
                    found = mark_creating(
                        self.pair, "contact_person", xero_id, "person", absent=found is None
                    )
            write = write_record(self.pipedrive, "person", payload, digest,
                                 existing_id=existing_id, last_hash=last_hash)  # fmt: skip
            if write.action != "unchanged" or link is None:
                save_link(
                    self.pair, "contact_person", xero_id, "person", write.pipedrive_id, digest, link=found
                )
            if moved is not None:
                moved.delete()
            if write.record:
                pipedrive_index.record_entry(self.connection, PERSON, write.record)
            actions.append(write.action)
        return actions

    def match_person(
        self, xero_id: str, key: str, payload: dict, org_id: int | None, search: bool = False
    ) -> int | None:
        """``search``: ask Pipedrive (20 tokens) even when the index could answer (an earlier create's
        answer was lost, so the index has not seen the person it may have made)."""
        email = key if normalize_email(key) else ""
        if self.index is None or search:
            if email:
                items = self.pipedrive.search_persons(email, fields="email", exact_match=True)
            elif search:
                items = self.pipedrive.search_persons(
                    payload["name"], fields="name", exact_match=True, organization_id=org_id
                )
            else:
                return None
            candidates = [pipedrive_index.record_entry(self.connection, PERSON, item) for item in items]
        elif email:
            candidates = pipedrive_index.persons_by_email(self.connection, email)
        else:
            candidates = pipedrive_index.persons_by_name_in_organization(
                self.connection, payload["name"], org_id
            )
        candidates = [c for c in candidates if c]
        taken = self.linked_elsewhere("person", [c.record_id for c in candidates], "contact_person", xero_id)
        free = [c for c in candidates if c.record_id not in taken]
        return free[0].record_id if free else None

    def _person_links(self, contact_id: str):
        return RecordLink.objects.filter(
            pair=self.pair, xero_type="contact_person", xero_id__startswith=f"{contact_id}:",
            pipedrive_type="person", state=RecordLink.State.LINKED,
        ).exclude(pipedrive_id=None)  # fmt: skip

    def _same_person_new_key(self, name: str, org_id: int, stale: dict) -> RecordLink | None:
        """A person of this contact whose e-mail changed in Xero: same name, same organization, linked
        under the old e-mail; returns that link. The caller moves it to the new key after the write
        succeeded (the person is updated, not duplicated, even when the write fails and is retried)."""
        if self.index is None:
            return None
        same = pipedrive_index.persons_by_name_in_organization(self.connection, name, org_id)
        for entry in same:
            if entry.record_id in stale:
                return stale.pop(entry.record_id)
        return None

    def _clear_persons(self, contact_id: str, org_id: int) -> list[str]:
        """GDPR rule "clear": every linked person of the contact loses its personal fields."""
        actions = []
        links = self._person_links(contact_id)
        payload = {"name": REMOVED_NAME, "emails": [], "phones": [], "org_id": org_id}
        digest = payload_hash(payload)
        for link in links:
            write = write_record(self.pipedrive, "person", payload, digest,
                                 existing_id=link.pipedrive_id, last_hash=link.payload_hash)  # fmt: skip
            if write.action != "unchanged":
                save_link(self.pair, "contact_person", link.xero_id, "person", write.pipedrive_id, digest)
            if write.record:
                pipedrive_index.record_entry(self.connection, PERSON, write.record)
            actions.append(write.action)
        return actions
