"""The connector's models, one module per concern, re-exported so ``from connector.models import X`` works.

- ``encryption``: the canary that proves the field encryption key still works
- ``connections``: Xero and Pipedrive connections, OAuth states
- ``pairs``: sync pairs and their guided-setup step results
- ``limits``: shared API rate windows and slots, jobs deferred to a budget reset
- ``inbox``: received webhook events
- ``pipedrive_index``: the local index of Pipedrive organizations and persons
- ``operations``: backfill runs and their ambiguities, reconciliation state
- ``overdue``: the daily overdue pass's state per pair and the reminders it gave deal owners
- ``ledger``: what the connector last read of Xero contacts and sales invoices (balances, due dates)

Every model is imported here so Django registers it under the ``connector`` app label. The pair
defaults (``default_pair_options``, ``new_pair_key``, ...) are re-exported too: migrations refer
to them as ``connector.models.<name>``.
"""

from connector.models.connections import ConnectionStatus, OAuthState, PipedriveConnection, XeroConnection
from connector.models.encryption import EncryptionCanary
from connector.models.inbox import WebhookEvent
from connector.models.ledger import KnownContact, KnownInvoice
from connector.models.limits import ApiRateWindow, ApiSlot, DeferredJob
from connector.models.operations import BackfillAmbiguity, BackfillRun, ReconciliationState
from connector.models.overdue import OverduePassState, OverdueReminder
from connector.models.pairs import (
    SetupStepResult,
    SyncPair,
    default_pair_options,
    new_pair_key,
    new_webhook_password,
    new_webhook_user,
)
from connector.models.pipedrive_index import PipedriveIndexEmail, PipedriveIndexEntry, PipedriveIndexState

__all__ = [
    "ApiRateWindow",
    "ApiSlot",
    "BackfillAmbiguity",
    "BackfillRun",
    "ConnectionStatus",
    "DeferredJob",
    "EncryptionCanary",
    "KnownContact",
    "KnownInvoice",
    "OAuthState",
    "OverduePassState",
    "OverdueReminder",
    "PipedriveConnection",
    "PipedriveIndexEmail",
    "PipedriveIndexEntry",
    "PipedriveIndexState",
    "ReconciliationState",
    "SetupStepResult",
    "SyncPair",
    "WebhookEvent",
    "XeroConnection",
    "default_pair_options",
    "new_pair_key",
    "new_webhook_password",
    "new_webhook_user",
]
