"""The browser fixtures: Chromium starts, pages are 1280x800, screenshots land where CI keeps them."""

import pytest

from tests.browser.conftest import SCREENSHOTS


@pytest.mark.django_db(transaction=True)
def test_admin_login_in_chromium_at_1280_by_800(page, screenshot, live_server, admin_user):
    page.goto(f"{live_server.url}/admin/login/")
    assert page.viewport_size == {"width": 1280, "height": 800}
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME")
    path = screenshot(page, "browser-fixtures-admin-home")
    assert path.parent == SCREENSHOTS and path.stat().st_size > 10_000


def test_screenshot_refuses_a_page_that_scrolls_sideways(page, screenshot):
    page.set_content("<div style='width: 2000px'>too wide for a finance user's screen</div>")
    with pytest.raises(AssertionError, match="scrolls sideways: 20"):
        screenshot(page, "browser-fixtures-too-wide")
