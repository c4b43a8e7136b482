"""The sync tests' sandbox fixtures (a pair joining sandbox Xero and Pipedrive on the live server),
for the audit tests that drive real syncs, failures and replays."""

import importlib

import pytest
from django.contrib.auth.models import Group, User

from tests.connector.sync.conftest import (  # noqa: F401 (fixtures)
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


@pytest.fixture
def roles(db):
    """The "Finance" and "Integration admin" groups as the data migration makes them (a transactional
    test before this one may have flushed them)."""
    from django.apps import apps

    importlib.import_module("audit.migrations.0003_schedules_and_roles").add_roles(apps, None)


STAFF_PASSWORD = "pw-for-tests-1"  # every role's test user (the browser tests sign in with it)


def _member(group: str, username: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", STAFF_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def finance_user(roles):
    return _member("Finance", "fiona")


@pytest.fixture
def integration_admin(roles):
    return _member("Integration admin", "ian")
