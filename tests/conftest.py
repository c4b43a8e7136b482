import contextlib
import logging

import pytest
from cryptography.fernet import Fernet, MultiFernet
from encrypted_model_fields import fields as emf

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


def pytest_sessionfinish(session, exitstatus):
    from connector.models import EncryptionCanary

    secrets = _SECRETS - {EncryptionCanary.PLAINTEXT}
    leaks = sorted({line[:120] for line in _LOG_LINES for secret in secrets if secret in line})
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if reporter:
            reporter.write_line(f"SECRET LEAK: {len(leaks)} log line(s) contain a stored secret:", red=True)
            for line in leaks[:10]:
                reporter.write_line(f"  {line}…")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter:
        reporter.write_line(
            f"Secret guard: {len(secrets)} stored secrets, {len(_LOG_LINES)} log lines, no secret logged."
        )
