"""Browser tests: Playwright's sync API driving Debian's Chromium (never a downloaded browser).

Fixtures: ``browser`` (one Chromium per test module), ``page`` (a fresh 1280x800 page per test) and
``finance_user`` (tests/audit/conftest.py: "fiona" in the Finance role, password ``STAFF_PASSWORD``),
``log_in(page, server_url, path, username, password)`` (the admin's login form, then ``path``) and
``screenshot`` (``screenshot(page, name)`` saves a full-page PNG under ``test-artifacts/screenshots/``
and checks the page has no horizontal scrolling at that width). Every test under ``tests/browser``
is marked ``browser``, so ``pytest -m "not browser"`` leaves them out.

Without a ``chromium`` on PATH the tests are skipped with the reason on a developer's machine, and
fail in CI (``CI`` set), where ``scripts/test.sh`` has installed it.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.audit.conftest import finance_user, roles  # noqa: F401 (fixtures)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call":
        item.browser_test_failed = report.failed  # read by ``page`` to keep the page a test failed on
    return report


def _unavailable(reason: str):
    """No browser: a clear failure in CI (the test command installs one there), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: scripts/test.sh installs chromium as root)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("No `chromium` on PATH: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: run scripts/test.sh (it installs the test extras)")
    # Playwright's sync API keeps an event loop running in this thread while it is open; the tests'
    # own ORM calls (fixtures, assertions) are ordinary synchronous code, so Django's async-safety
    # check must not refuse them. Only for this module: the rest of the suite keeps the check.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    if getattr(request.node, "browser_test_failed", False):
        save_screenshot(page, f"FAILED-{request.node.name}", check_width=False)
    context.close()


def save_screenshot(page, name: str, *, check_width: bool = True) -> Path:
    """Save a full-page PNG named ``name`` and check the page fits the viewport's width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    if check_width:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"{page.url} scrolls sideways: {width}px wide (see {path})"
    return path


@pytest.fixture
def screenshot():
    return save_screenshot


def log_in(page, server_url: str, path: str, username: str, password: str) -> None:
    """Sign in through the admin's login form and land on ``path``."""
    page.goto(f"{server_url}/admin/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
