"""The roles' users (tests/audit/conftest.py) and the webhook tests' pair (tests/connector/)."""

from tests.audit.conftest import finance_user, integration_admin, roles  # noqa: F401
from tests.connector.conftest import pipedrive_api_token_connection, xero_connection  # noqa: F401
from tests.connector.webhook_helpers import pair  # noqa: F401
