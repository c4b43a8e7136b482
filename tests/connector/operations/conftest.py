"""Backfill, reconciliation, replay, health and alerts run against the sandbox world of
tests/connector/sync, with the roles' users of tests/audit."""

from tests.audit.conftest import finance_user, integration_admin, roles  # noqa: F401
from tests.connector.sync.conftest import (  # noqa: F401
    default_rules,
    empty_shared_cache,
    pipedrive_company,
    pipedrive_connection,
    sandbox,
    sandbox_urls,
    sync_pair,
    xero_connection,
    xero_organisation,
)
