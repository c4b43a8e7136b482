"""The roles' users, as in tests/audit/conftest.py."""

from tests.audit.conftest import finance_user, integration_admin, roles  # noqa: F401
