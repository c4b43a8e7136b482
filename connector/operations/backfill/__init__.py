"""Backfill: bring a Xero organisation's existing contacts, invoices and payments across to Pipedrive.

A run (``BackfillRun``) is previewed first: a dry run pages through Xero and decides, with the very
matching code the real run uses (``BackfillContactSync`` in ``matching.py``), what would be created,
matched (and by which rule) or is ambiguous, and estimates the Xero calls, Pipedrive tokens and
time. Once confirmed, the run pages through Contacts, then sales Invoices (optionally dated since a
day), then Payments, 1,000 records per Xero call, ordered by record id so a record changed meanwhile
keeps its place, and feeds each page to the same sync services the webhooks use (trigger "backfill":
same links, matching and audit rows). A last pass syncs what changed in Xero while the backfill ran.

Safety: where the run stands (phase, page, position) is saved after every chunk of records, so a
killed worker's run is resumed there by the upkeep schedule; a unique constraint allows one active
run per pair; each chunk is synced under the pair's drain lock and skips records a webhook brought
in after the page was fetched (the webhook's sync is newer), and the run waits while the pair's
inbox has work, so live changes keep priority. Limits: Xero's minute limit and Pipedrive's burst are
waited for by the clients; before each chunk the run checks Xero's day limit and Pipedrive's daily
budget (keeping the reserve for live work) and, when either would run out, waits for the reset as a
``DeferredJob`` and says so on the run (``status`` "waiting", ``resume_at``, ``state_message``).

Modules, by job: ``paging`` (settings, limits, Xero's lists page by page), ``meter`` (calls and
tokens spent), ``matching`` (the contacts sync with the preview's choices), ``preview`` (the dry
run), ``control`` (start, confirm, pause, resume, cancel), ``worker`` (the run), ``progress``.
"""

from connector.operations.backfill.control import (
    RESUME_FUNC,
    active_run,
    cancel,
    confirm,
    describe_error,
    drop_resume_jobs,
    enqueue,
    pause,
    resolve,
    resume,
    resume_after_reset,
    resume_stalled_runs,
    run_preview,
    start_preview,
)
from connector.operations.backfill.matching import BackfillContactSync
from connector.operations.backfill.meter import CallMeter
from connector.operations.backfill.paging import (
    CATEGORIES,
    CREATE_TOKENS,
    ORDER,
    PHASES,
    RESOURCES,
    TOKENS_PER_RECORD_CEILING,
    UPDATE_TOKENS,
    BackfillError,
    chunk_size,
    fetch_page,
    is_last_page,
    lease_seconds,
    page_size,
    resolutions_of,
    setting,
    slice_seconds,
    where_filter,
    xero_day_reserve,
)
from connector.operations.backfill.preview import Plan, Preview, estimate
from connector.operations.backfill.progress import pair_backfill_state, progress
from connector.operations.backfill.worker import BackfillWorker, run_backfill

__all__ = [
    "CATEGORIES",
    "CREATE_TOKENS",
    "ORDER",
    "PHASES",
    "RESOURCES",
    "RESUME_FUNC",
    "TOKENS_PER_RECORD_CEILING",
    "UPDATE_TOKENS",
    "BackfillContactSync",
    "BackfillError",
    "BackfillWorker",
    "CallMeter",
    "Plan",
    "Preview",
    "active_run",
    "cancel",
    "chunk_size",
    "confirm",
    "describe_error",
    "drop_resume_jobs",
    "enqueue",
    "estimate",
    "fetch_page",
    "is_last_page",
    "lease_seconds",
    "page_size",
    "pair_backfill_state",
    "pause",
    "progress",
    "resolutions_of",
    "resolve",
    "resume",
    "resume_after_reset",
    "resume_stalled_runs",
    "run_backfill",
    "run_preview",
    "setting",
    "slice_seconds",
    "start_preview",
    "where_filter",
    "xero_day_reserve",
]
