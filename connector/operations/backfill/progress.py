"""Where a run stands, as the admin page and the pair's list show it."""

from __future__ import annotations

import logging

from connector.models import BackfillRun
from connector.operations.backfill.control import active_run
from connector.operations.backfill.paging import RESOURCES

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


def progress(run: BackfillRun) -> dict:
    """Phase, done of total, rate, spend, ETA and errors, in one dict (the admin page and the command)."""
    counts = run.counts or {}
    total = sum(int((counts.get(p) or {}).get("total", 0)) for p in RESOURCES)
    done = 0
    for phase in RESOURCES:
        figures = counts.get(phase) or {}
        done += min(int(figures.get("done", 0)), int(figures.get("total", 0)) or int(figures.get("done", 0)))
    minutes = run.active_seconds / 60.0
    rate = done / minutes if minutes > 0 else 0.0
    eta = (total - done) / rate * 60 if rate > 0 and total > done else None
    return {
        "status": run.status,
        "status_label": run.get_status_display(),
        "phase": run.get_phase_display(),
        "done": done,
        "total": total,
        "percent": round(100.0 * done / total, 1) if total else 0.0,
        "per_phase": {p: counts.get(p, {}) for p in RESOURCES},
        "rate_per_minute": round(rate, 1),
        "eta_seconds": round(eta) if eta is not None else None,
        "xero_calls": run.xero_calls,
        "pipedrive_calls": run.pipedrive_calls,
        "pipedrive_tokens": run.pipedrive_tokens,
        "created": run.created_records or {},
        "errors": run.errors,
        "last_error": run.last_error,
        "message": run.state_message,
        "resume_at": run.resume_at.isoformat() if run.resume_at else None,
    }


def pair_backfill_state(pair) -> dict | None:
    """For the health page: the pair's active (or latest) backfill and whether it waits, and why."""
    run = active_run(pair) or BackfillRun.objects.filter(pair=pair).first()
    if run is None:
        return None
    return {"run_id": run.pk, **progress(run)}
