"""The stage table of one sync run: which Pipedrive pipeline stage (and deal status) an invoice's
status and payment state put its deal in.

Stage rules name their stage by id or by name; names are resolved against Pipedrive's pipelines and
stages, fetched once (10 tokens) and shared by every run for a few minutes. A name missing from the
cached list is looked up live once before the invoice fails with a reason saying what to fix.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.cache import cache

from connector import clock
from connector.sync.common import SyncProblem
from mapping.choices import InvoiceStatus
from mapping.engine import is_overdue, payment_state, stage_rule_for
from mapping.rules import stage_rules

logger = logging.getLogger(__name__)

STAGES_CACHE_SECONDS = 300  # names → ids; a name missing from the cached list is looked up live
CLOSED_DEAL_STATUSES = ("won", "lost")


@dataclass
class StageChoice:
    """Where the stage table puts a deal: stage id, and the status/lost reason to set (if any)."""

    stage_id: int
    status: str
    lost_reason: str


class StageTable:
    """The pair's stage rules, resolved to Pipedrive stage ids on first need."""

    def __init__(self, pair, pipedrive_client):
        self.pair = pair
        self._client = pipedrive_client  # a callable: the run's Pipedrive client, made on first use
        self._rules = None
        self._pipelines: list[tuple[int, str]] | None = None
        self._stages: list[tuple[int, int, str]] | None = None
        self._fresh = False
        self._today: dt.date | None = None

    @property
    def today(self) -> dt.date:
        """The Xero organisation's local date, read once per run (an invoice is overdue after it)."""
        if self._today is None:
            self._today = clock.pair_today(self.pair)
        return self._today

    @property
    def rules(self):
        if self._rules is None:
            self._rules = stage_rules(self.pair)
        return self._rules

    def open_statuses(self) -> list[str]:
        """The invoice statuses whose deal the table keeps open (by default DRAFT, SUBMITTED and
        AUTHORISED): the deals whose over-credit flag depends on the contact's credit."""
        statuses = []
        for status in InvoiceStatus.values:
            rule = stage_rule_for(self.rules, status, None)
            if rule is not None and rule.deal_status not in CLOSED_DEAL_STATUSES:
                statuses.append(status)
        return statuses

    def cache_key(self) -> str:
        return f"sync:pipedrive-stages:{self.pair.pipedrive_connection_id}"

    def forget(self) -> None:
        """Drop the shared list (a stage deleted in Pipedrive meanwhile)."""
        cache.delete(self.cache_key())

    def _load(self, fresh: bool = False) -> None:
        """Pipelines and stages (10 tokens), shared by every run for a few minutes; ``fresh`` refetches."""
        if self._stages is not None and not fresh:
            return
        cached = None if fresh else cache.get(self.cache_key())
        if cached is None:
            client = self._client()
            pipelines = [(int(p["id"]), p.get("name") or "") for p in client.pipelines() or []]
            stages = [
                (int(s["id"]), int(s["pipeline_id"]), s.get("name") or "")
                for s in client.stages() or []
                if not s.get("is_deleted")
            ]
            cached = {"pipelines": pipelines, "stages": stages, "fresh": True}
            cache.set(self.cache_key(), {**cached, "fresh": False}, STAGES_CACHE_SECONDS)
        self._pipelines, self._stages = cached["pipelines"], cached["stages"]
        self._fresh = cached["fresh"]

    def resolve(self, rule) -> int:
        """The stage id a stage rule means: its id, else its stage name in its pipeline (id or name)."""
        if rule.stage_id:
            return int(rule.stage_id)
        self._load()
        try:
            return self._find(rule)
        except SyncProblem:
            if self._fresh:
                raise
            self._load(fresh=True)
            return self._find(rule)

    def _find(self, rule) -> int:
        pipelines = self._pipelines or []
        pipeline_ids = [rule.pipeline_id] if rule.pipeline_id else []
        if not pipeline_ids and rule.pipeline_name:
            wanted = rule.pipeline_name.strip().casefold()
            pipeline_ids = [pid for pid, name in pipelines if name.strip().casefold() == wanted]
        pipeline_label = rule.pipeline_name or rule.pipeline_id or "(none)"
        if (rule.pipeline_id or rule.pipeline_name) and not pipeline_ids:
            raise SyncProblem(
                f"The Pipedrive pipeline {pipeline_label!r} does not exist: create the invoice pipeline from "
                "the admin (Sync pairs → “Create the invoice pipeline”) or correct the stage mapping "
                f"for {rule.xero_value}."
            )
        wanted_stage = (rule.stage_name or "").strip().casefold()
        for stage_id, pipeline_id, name in self._stages or []:
            if (not pipeline_ids or pipeline_id in pipeline_ids) and name.strip().casefold() == wanted_stage:
                return stage_id
        raise SyncProblem(
            f"The stage {rule.stage_name!r} does not exist in the Pipedrive pipeline {pipeline_label!r}: "
            "create the invoice pipeline from the admin (Sync pairs → “Create the invoice pipeline”) or "
            f"correct the stage mapping for {rule.xero_value}."
        )

    def stage_for(self, invoice: dict) -> StageChoice:
        status = invoice.get("Status") or ""
        state = payment_state(invoice)
        if is_overdue(invoice, self.today):
            rule = stage_rule_for(self.rules, status, state, overdue=True)
            if rule is not None and rule.kind == "due_state":
                try:
                    return StageChoice(self.resolve(rule), rule.deal_status or "", rule.lost_reason or "")
                except SyncProblem as problem:
                    # A pipeline made before the Overdue stage existed: the deal keeps following the
                    # other rules (as before the rule existed) until "Create the invoice pipeline" adds it.
                    logger.warning("Overdue stage rule not usable for pair %s: %s", self.pair.pk, problem)
        rule = stage_rule_for(self.rules, status, state)
        if rule is None:
            what = f"{status} ({state.replace('_', ' ').lower()})" if state else status
            raise SyncProblem(f"No stage mapping for invoice status {what}: add one under Stage mappings.")
        return StageChoice(self.resolve(rule), rule.deal_status or "", rule.lost_reason or "")
