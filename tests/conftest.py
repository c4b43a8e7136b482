import contextlib
import logging
import socket

import pytest
from cryptography.fernet import Fernet, MultiFernet
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread
from encrypted_model_fields import fields as emf

from sandbox import clock as sandbox_clock
from tests import tiers


class NoDelayWSGIServer(ThreadedWSGIServer):
    """The live server with Nagle's algorithm off on each connection it accepts.

    wsgiref writes a response's headers and its body in two sends; with Nagle on, the body waits for
    the client's delayed ACK of the headers (40 ms on Linux) on every request. The suite's sync,
    backfill and replay tests make thousands of API calls to the sandbox on the live server, so that
    wait was most of their time (gunicorn, which the resilience stack runs, sets TCP_NODELAY too)."""

    def get_request(self):
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


# pytest-django's live_server builds Django's LiveServerThread, which makes its server_class.
LiveServerThread.server_class = NoDelayWSGIServer


@pytest.fixture(autouse=True)
def sandbox_clock_at_real_time():
    """Every test starts and ends with the sandbox clock at real time: a test that moved it (a day on
    for a limit, past a due date) and did not put it back would otherwise hand the next test on the
    same worker expired tokens and shifted dates, so failures followed the order of the tests."""
    sandbox_clock.reset()
    yield
    sandbox_clock.reset()


# The public address the connect-flow tests pretend to have (redirect URIs are built on it).
SANDBOX_PUBLIC_BASE = "https://app.example"


@pytest.fixture
def sandbox_urls(settings, live_server):
    """Every API address of the connector pointed at the sandboxes on the live server
    (tests/connector/sync has its own, for API-only work)."""
    sandbox = f"{live_server.url}/sandbox"
    settings.PUBLIC_BASE_URL = SANDBOX_PUBLIC_BASE
    settings.XERO_AUTHORIZE_URL = f"{sandbox}/xero/login/identity/connect/authorize"
    settings.XERO_IDENTITY_URL = f"{sandbox}/xero/identity"
    settings.XERO_CONNECTIONS_URL = f"{sandbox}/xero/api/connections"
    settings.XERO_API_URL = f"{sandbox}/xero/api/api.xro/2.0"
    settings.PIPEDRIVE_OAUTH_URL = f"{sandbox}/pipedrive"
    settings.PIPEDRIVE_API_URL = f"{sandbox}/pipedrive"
    # Pipedrive tokens go to the sandbox's address only with the sandbox on (connector/connections/hosts.py).
    settings.SANDBOX_ENABLED = True
    return sandbox


@pytest.fixture
def swap_encryption_keys(monkeypatch):
    """Replace the package's cipher, as if the process had started with other keys."""

    def swap(*keys: str):
        monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(k) for k in keys]))

    return swap


# --- Whole-run guard: no stored secret may ever reach a log line ---------------------
#
# Every value the connector encrypts (tokens, client secrets, webhook keys) is noted as
# it is stored, every log record of the run is kept, and the session fails if any
# secret appears in any record. This covers the whole suite, not one test.

_SECRETS: set[str] = set()
_LOG_LINES: list[str] = []
_MIN_SECRET_LENGTH = 12  # shorter values (flags, test placeholders) would match by chance


class _KeepEverything(logging.Handler):
    def emit(self, record):
        with contextlib.suppress(Exception):  # a broken record must not break the guard
            _LOG_LINES.append(self.format(record))


def pytest_configure(config):
    original = emf.encrypt_str

    def noting_encrypt_str(value):
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
            _SECRETS.add(value)
        return original(value)

    emf.encrypt_str = noting_encrypt_str
    handler = _KeepEverything(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)


def _leaked_lines() -> list[str]:
    from connector.models import EncryptionCanary  # the app registry is ready only by the session's end

    secrets = _SECRETS - {EncryptionCanary.PLAINTEXT}
    return sorted({line[:120] for line in _LOG_LINES for secret in secrets if secret in line})


_WORKER_COUNTS: list[tuple[int, int]] = []  # (secrets, log lines) of each xdist worker, on the controller
_WORKER_LEAKS: list[str] = []


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the suite also runs with -p no:xdist
def pytest_testnodedown(node, error):
    """On the xdist controller: each worker's guard result (pytest_sessionfinish below, in the worker)."""
    output = getattr(node, "workeroutput", {})
    _WORKER_LEAKS.extend(output.get("secret_leaks", []))
    _WORKER_COUNTS.append((output.get("secret_count", 0), output.get("log_line_count", 0)))


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: its counts and leaks go to the controller
        config.workeroutput["secret_leaks"] = _leaked_lines()
        config.workeroutput["secret_count"] = len(_SECRETS)
        config.workeroutput["log_line_count"] = len(_LOG_LINES)
        return
    leaks = sorted({*_leaked_lines(), *_WORKER_LEAKS})
    secret_count = len(_SECRETS) + sum(count for count, _ in _WORKER_COUNTS)
    line_count = len(_LOG_LINES) + sum(lines for _, lines in _WORKER_COUNTS)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if reporter:
            reporter.write_line(f"SECRET LEAK: {len(leaks)} log line(s) contain a stored secret:", red=True)
            for line in leaks[:10]:
                reporter.write_line(f"  {line}…")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line(
            f"Secret guard: {secret_count} stored secrets, {line_count} log lines, no secret logged."
        )


# --- Tiers and the pass-2 marker (tests/tiers.py, docs/testing.md) ---------------------


def _is_property_based(item) -> bool:
    """Hypothesis examples, or requests schemathesis generates from the specs (the timing table's "fuzz")."""
    return bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


# Tests that cannot share the machine with each other: one xdist worker runs each group, one test at a
# time (``--dist loadgroup``), while the other worker runs the rest.
SERIAL_GROUPS = {"resilience": "processes", "browser": "browser"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects and xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Every test gets its tier marker, ``backend`` when its outcome can depend on the database or the
    broker, and an xdist group when it must not run beside its like; the tier and group are written to
    the junit XML (scripts/test_timing.py reads them)."""
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        fixturenames = getattr(item, "fixturenames", ())
        tier = tiers.tier_of(item.path, fixturenames, markers)
        if tier not in markers:
            item.add_marker(getattr(pytest.mark, tier))
        if "backend" not in markers and tiers.backend_reasons(item.path, fixturenames, markers):
            item.add_marker(pytest.mark.backend)
        if tier in SERIAL_GROUPS and "xdist_group" not in markers:
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUPS[tier]))
        item.user_properties.append(("tier", tier))
        item.user_properties.append(("group", tiers.group_of(tier, _is_property_based(item))))
