"""Fixtures of the resilience suite: running stacks (tests/resilience/stack.py), on the combination the
test run uses: SQLite and the ORM broker by default; PostgreSQL and Redis when DATABASE_URL and
REDIS_URL are set, then on PRIVATE servers started here (never the shared ones, which the scenarios
would otherwise restart under other people's feet)."""

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.resilience.stack import PrivatePostgres, PrivateRedis, Stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/resilience/" in str(item.fspath):
            item.add_marker(pytest.mark.resilience)


def on_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("postgres")


def on_redis() -> bool:
    return bool(os.environ.get("REDIS_URL"))


@pytest.fixture(scope="session")
def servers_folder():
    with tempfile.TemporaryDirectory(prefix="resilience-servers-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def private_postgres(servers_folder):
    """On the PostgreSQL pass: one private server for the suite's stacks (a database each)."""
    if not on_postgres():
        yield None
        return
    if not PrivatePostgres.available():
        pytest.skip("initdb/pg_ctl are not installed: a private PostgreSQL cannot be started")
    server = PrivatePostgres(servers_folder).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_redis(servers_folder):
    if not on_redis():
        yield None
        return
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed: a private Redis cannot be started")
    server = PrivateRedis(servers_folder).start()
    yield server
    server.stop()


_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def migrated_template(servers_folder, private_postgres, private_redis):
    """One migrated data folder (and, on PostgreSQL, one migrated template database) that every stack
    starts from: migrating each stack's database would cost more than most scenarios."""
    folder = servers_folder / "template"
    folder.mkdir()
    database_url = private_postgres.database("stack_template") if private_postgres else ""
    Stack(folder, database_url=database_url, redis_url=private_redis.url if private_redis else "").migrate()
    return folder


@pytest.fixture
def make_stack(tmp_path, private_postgres, private_redis, migrated_template):
    """``make_stack(**settings)``: a Stack (not started) on this pass's database and broker, already
    migrated unless ``database_url`` names another server; every stack made is stopped at the end."""
    made = []

    def make(database_url: str = "", redis_url: str = "", **settings) -> Stack:
        number = next(_numbers)
        folder = tmp_path / f"stack-{number}"
        copied = not database_url
        if copied:
            shutil.copytree(migrated_template, folder, ignore=shutil.ignore_patterns("stack.log"))
            if private_postgres is not None:
                database_url = private_postgres.database(f"stack_{number}", template="stack_template")
        else:
            folder.mkdir()
        if not redis_url and private_redis is not None:
            redis_url = private_redis.url.rsplit("/", 1)[0] + f"/{number % 16}"
        stack = Stack(folder, database_url=database_url, redis_url=redis_url, **settings)
        stack.migrated = copied
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
