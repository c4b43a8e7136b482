"""The call meter: Xero calls and Pipedrive tokens a preview or a run spends, for the estimates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from connector.models import BackfillRun

logger = logging.getLogger(__name__)

Status, Phase = BackfillRun.Status, BackfillRun.Phase


@dataclass
class CallMeter:
    """Counts the calls (and Pipedrive tokens, and records created by kind) of the clients it watches."""

    xero_calls: int = 0
    pipedrive_calls: int = 0
    pipedrive_tokens: int = 0
    created: dict = field(default_factory=dict)

    def watch_xero(self, client):
        original = client.request

        def request(method, path, **kwargs):
            self.xero_calls += 1
            return original(method, path, **kwargs)

        client.request = request
        return client

    def watch_pipedrive(self, client):
        original = client.request

        def request(method, path, **kwargs):
            self.pipedrive_calls += 1
            self.pipedrive_tokens += int(kwargs.get("units", 1))
            result = original(method, path, **kwargs)
            if method == "POST":
                kind = {"organizations": "organization", "persons": "person", "deals": "deal"}.get(
                    path.rstrip("/").rsplit("/", 1)[-1], "note" if path.endswith("/notes") else ""
                )
                if kind:
                    self.created[kind] = self.created.get(kind, 0) + 1
            return result

        client.request = request
        return client

    def drain_into(self, run: BackfillRun) -> None:
        """Add what was counted since the last call to the run (saved by the caller)."""
        run.xero_calls += self.xero_calls
        run.pipedrive_calls += self.pipedrive_calls
        run.pipedrive_tokens += self.pipedrive_tokens
        created = dict(run.created_records or {})
        for kind, number in self.created.items():
            created[kind] = created.get(kind, 0) + number
        run.created_records = created
        self.xero_calls = self.pipedrive_calls = self.pipedrive_tokens = 0
        self.created = {}


# --- Matching: the contacts sync with the preview's choices --------------------------------
