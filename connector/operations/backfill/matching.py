"""The contacts sync as backfill uses it: the same matching, with the preview's recorded choices."""

from __future__ import annotations

import logging

from connector.models import BackfillRun
from connector.sync.contacts import ContactSync

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


class BackfillContactSync(ContactSync):
    """The contacts sync, plus the admin's answers to the preview's ambiguous matches.

    The preview and the run both match through this class, so the preview's counts are the run's.
    ``resolutions``: {ContactID (lower case): organization id as text, or "new"}. ``claims`` (preview
    only): the Pipedrive records the preview has already given to a Xero record, standing in for the
    links the run will have saved by then.
    """

    def __init__(self, pair, *, resolutions=None, claims=None, **kwargs):
        super().__init__(pair, trigger="backfill", **kwargs)
        self.resolutions = resolutions or {}
        self.claims = claims
        self.name_candidates: dict[str, list] = {}  # ContactID -> the free candidates by name

    def linked_elsewhere(self, pipedrive_type, pipedrive_ids, xero_type, xero_id):
        taken = super().linked_elsewhere(pipedrive_type, pipedrive_ids, xero_type, xero_id)
        if self.claims is not None:
            for record_id in pipedrive_ids:
                owner = self.claims.get((pipedrive_type, int(record_id)))
                if owner is not None and owner != xero_id:
                    taken.add(int(record_id))
        return taken

    def pick_by_name(self, contact_id, candidates, notes):
        taken = self.linked_elsewhere(
            "organization", [c.record_id for c in candidates], "contact", contact_id
        )
        free = [
            c
            for c in candidates
            if c.record_id not in taken and (not c.xero_contact_id or c.xero_contact_id == contact_id.lower())
        ]
        self.name_candidates[contact_id] = free
        choice = self.resolutions.get(contact_id.lower(), "")
        if choice == "new":
            notes.append("a new organization, as chosen in the backfill preview")
            return None
        if choice.isdigit() and int(choice) in {c.record_id for c in free}:
            notes.append(
                f"matched organization {choice} by normalized name, as chosen in the backfill preview"
            )
            return int(choice)
        return super().pick_by_name(contact_id, candidates, notes)
