"""The sync tests' fixtures (a pair on the sandboxes of the live server), for the panel's end-to-end tests."""

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
