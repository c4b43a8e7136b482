"""django-q2 entry points of the operations (thin): bulk replays, alerts, retention, overdue checks."""

from connector.operations import alerts, overdue, replay, retention


def run_replay(run_id: int) -> dict:
    run = replay.run_bulk_replay(run_id)
    return {"status": run.status, "position": run.position, "total": run.total}


def resume_replays() -> int:
    """Every minute: bulk replays paused by a limit go on once the limit has passed."""
    return replay.resume_due_runs()


def check_alerts() -> dict:
    """Every five minutes: open alerts for new incidents (one e-mail each), clear the resolved."""
    return alerts.evaluate()


def prune_history() -> dict:
    """Daily: old successful sync records (audit) and finished inbox events (connector) go, in batches."""
    return retention.prune()


def run_overdue_checks() -> dict:
    """Every 15 minutes: start each pair's daily overdue pass once its set local time has passed."""
    return overdue.run_due_passes()


def run_overdue_check(pair_id: int, requested_by: str = "") -> dict:
    """One pair's overdue pass now (the admin's "Run the overdue check now")."""
    return overdue.overdue_pass(pair_id, requested_by=requested_by)
