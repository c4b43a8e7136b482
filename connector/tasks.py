"""django-q2 entry points (thin): the scheduled refresh of quiet connections, the inbox drain and sweep."""

import logging
from datetime import timedelta

from django.utils import timezone

from connector.connections import oauth
from connector.errors import ConnectorError
from connector.intake import drain, inbox
from connector.models import ConnectionStatus, PipedriveConnection, SyncPair, XeroConnection
from connector.operations import backfill, reconciliation
from connector.sync import credit_recheck

logger = logging.getLogger(__name__)

# Xero refresh tokens die after 60 days unused; refreshing a connection quiet for a week keeps a wide margin.
QUIET_FOR = timedelta(days=7)


def drain_pair(pair_id: int) -> dict:
    """Process the pair's pending webhook events (connector.intake.drain)."""
    return drain.drain_pair(pair_id)


def sweep_inbox() -> dict:
    """Every minute: re-enqueue drains for events a lost message or worker left behind, and write the
    refused webhook requests still waiting in the cache."""
    outcome = drain.sweep_inbox()
    inbox.flush_rejections()
    return outcome


def refresh_quiet_connections() -> dict:
    """Refresh every active OAuth connection not refreshed for QUIET_FOR; returns counts per outcome."""
    cutoff = timezone.now() - QUIET_FOR
    outcome = {"refreshed": 0, "failed": 0}
    quiet_xero = XeroConnection.objects.filter(status=ConnectionStatus.ACTIVE, last_refreshed_at__lt=cutoff)
    quiet_pipedrive = PipedriveConnection.objects.filter(
        status=ConnectionStatus.ACTIVE,
        auth_type=PipedriveConnection.AuthType.OAUTH,
        last_refreshed_at__lt=cutoff,
    )
    jobs = [(oauth.refresh_xero, pk) for pk in quiet_xero.values_list("pk", flat=True)]
    jobs += [(oauth.refresh_pipedrive, pk) for pk in quiet_pipedrive.values_list("pk", flat=True)]
    for refresh, pk in jobs:
        try:
            refresh(pk, force=True)
            outcome["refreshed"] += 1
        except ConnectorError as exc:  # broken ones are marked and alerted inside refresh
            outcome["failed"] += 1
            logger.warning("Scheduled refresh failed: %s", exc)
    return outcome


def recheck_credit(pair_id: int, contact_ids: list[str], trigger_text: str = "") -> None:
    """After a credit limit was saved or deleted (connector.sync.credit_recheck.recheck_credit);
    ``trigger_text`` names the change (a task queued before it existed has none: the default words)."""
    pair = SyncPair.objects.filter(pk=pair_id).first()
    if pair is not None:
        credit_recheck.recheck_credit(pair, contact_ids, trigger_text=trigger_text)


def run_backfill(run_id: int) -> str:
    """Preview or carry forward one backfill run (connector.operations.backfill)."""
    return backfill.run_backfill(run_id)


def reconcile_pair(pair_id: int) -> dict:
    """One reconciliation pass of a pair (connector.operations.reconciliation), on its schedule."""
    return reconciliation.reconcile_pair(pair_id)


def backfill_upkeep() -> dict:
    """Every minute: resume backfills a killed worker left; keep reconciliation schedules in step."""
    return {"resumed": backfill.resume_stalled_runs(), "pairs": reconciliation.ensure_all_schedules()}
