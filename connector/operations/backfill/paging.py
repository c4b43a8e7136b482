"""Backfill's settings, limits and the paging of Xero's lists (ordered by record id, resumable by page)."""

from __future__ import annotations

import logging

from django.conf import settings

from connector.errors import ConnectorError
from connector.models import BackfillRun
from connector.sync.invoices import SALES
from connector.sync.payments import SALES_PAYMENT
from connector.sync.record_types import BACKFILL_TYPES

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


PHASES: list[str] = [Phase.CONTACTS, Phase.INVOICES, Phase.PAYMENTS, Phase.CATCH_UP]
RESOURCES: dict[str, str] = {
    Phase.CONTACTS: "Contacts",
    Phase.INVOICES: "Invoices",
    Phase.PAYMENTS: "Payments",
}
# From the registry of record types (connector/sync/record_types.py).
ORDER = {t.resource: t.id_field for t in BACKFILL_TYPES}
CATEGORIES = {t.resource: t.category for t in BACKFILL_TYPES}
# Pipedrive tokens of each write (v2 create/update 5, v1 note 10) and of listing 500 records.
CREATE_TOKENS = {"organization": 5, "person": 5, "deal": 5, "note": 10}
UPDATE_TOKENS = 5
TOKENS_PER_RECORD_CEILING = 11  # a contact with one person: 2 creates and its share of the listing


def setting(name: str, default):
    return getattr(settings, name, default)


def page_size() -> int:
    return max(1, min(1000, int(setting("BACKFILL_PAGE_SIZE", 1000))))


def chunk_size() -> int:
    return max(1, int(setting("BACKFILL_CHUNK", 25)))


def lease_seconds() -> float:
    return float(setting("BACKFILL_LEASE_SECONDS", 120))


def slice_seconds() -> float:
    """A worker gives the run back (and queues its continuation) after this long: django-q kills
    tasks after Q_TIMEOUT, and other work gets a turn."""
    return float(setting("BACKFILL_SLICE_SECONDS", 240))


def xero_day_reserve() -> int:
    """Xero calls a day kept for live (webhook) work: the backfill waits for the reset below this."""
    return int(setting("BACKFILL_XERO_DAY_RESERVE", 100))


class BackfillError(ConnectorError):
    """The request cannot be carried out as things stand; the message says why, in finance's words."""


# --- Counting what a run spends --------------------------------------------------------------


def resolutions_of(run: BackfillRun) -> dict[str, str]:
    return {
        a.contact_id.lower(): a.choice
        for a in run.ambiguities.exclude(choice="").only("contact_id", "choice")
    }


# --- Paging -------------------------------------------------------------------------------------


def where_filter(run: BackfillRun, resource: str) -> str | None:
    parts = []
    if resource == "Invoices":
        parts.append(f'Type=="{SALES}"')
    if resource == "Payments":
        parts.append(f'PaymentType=="{SALES_PAYMENT}"')
    if run.since and resource in ("Invoices", "Payments"):
        day = run.since
        parts.append(f"Date>=DateTime({day.year},{day.month:02d},{day.day:02d})")
    return " && ".join(parts) or None


def fetch_page(xero, run: BackfillRun, resource: str, page: int, modified_since=None):
    return xero.get_page(
        resource,
        page,
        page_size(),
        order=ORDER[resource],
        where=where_filter(run, resource),
        modified_since=modified_since,
        include_archived=resource == "Contacts",
    )


def is_last_page(rows: list, pagination: dict, page: int) -> bool:
    if pagination.get("pageCount") is not None:
        return page >= int(pagination["pageCount"])
    return len(rows) < page_size()


# --- The preview (dry run) ------------------------------------------------------------------
