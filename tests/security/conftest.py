"""The roles' users (tests/audit/conftest.py) and the webhook tests' pair (tests/connector/)."""

from tests.audit.conftest import finance_user, integration_admin, roles  # noqa: F401
from tests.connector.conftest import (  # noqa: F401
    pipedrive_api_token_connection,
    pipedrive_oauth_connection,
    xero_connection,
)
from tests.connector.webhook_helpers import pair  # noqa: F401
