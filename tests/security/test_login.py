"""The admin login: throttling and lockout (django-axes) and the second factor (django-otp TOTP).

The suite runs with both off (config/settings_test.py); each test here turns on what it checks.
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-right-password-1"
LOGIN = "/admin/login/"


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()
    return settings


@pytest.fixture
def two_factor_on(settings):
    settings.REQUIRE_2FA = True
    return settings


def post_login(client, password, **extra):
    return client.post(LOGIN, {"username": "boss", "password": password, "next": "/admin/", **extra})


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset)
    return f"{value:0{device.digits}d}"


def admin_opens(client) -> bool:
    response = client.get("/admin/")
    return response.status_code == 200 and b"Log out" in response.content


def test_thirty_wrong_passwords_lock_the_account_out_even_for_the_right_one(client, admin_user, axes_on):
    answers = [post_login(client, f"wrong-{n}").status_code for n in range(30)]
    assert answers[:4] == [200] * 4  # the form again, with its error
    assert set(answers[5:]) == {429}  # locked out from the limit on

    response = post_login(client, PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "Login locked" in text and "try again after" in text and "15 minutes" in text
    assert "manage.py axes_reset" in text
    assert "_auth_user_id" not in client.session
    assert not admin_opens(client)


def test_axes_reset_lifts_the_lockout(client, admin_user, axes_on):
    for n in range(6):
        post_login(client, f"wrong-{n}")
    assert post_login(client, PASSWORD).status_code == 429
    call_command("axes_reset")
    response = post_login(client, PASSWORD)
    assert response.status_code == 302
    assert admin_opens(client)


def test_a_lockout_is_per_username_and_address(client, admin_user, axes_on):
    get_user_model().objects.create_superuser("other", "o@example.com", PASSWORD)
    for n in range(6):
        post_login(client, f"wrong-{n}")
    response = client.post(LOGIN, {"username": "other", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302


def test_with_2fa_a_password_alone_opens_no_admin_page_and_leads_to_enrolment(
    client, admin_user, two_factor_on
):
    response = post_login(client, PASSWORD)
    assert response.status_code == 302
    for path in ("/admin/", "/admin/auth/user/", "/admin/setup/", "/admin/audit/syncrecord/"):
        page = client.get(path, follow=True)
        assert page.redirect_chain[-1][0] == "/admin/two-factor/", path
        assert b"Set up two-factor authentication" in page.content
    assert not admin_opens(client)


def test_enrolment_with_a_right_code_confirms_the_device_and_opens_the_admin(
    client, admin_user, two_factor_on
):
    post_login(client, PASSWORD)
    page = client.get("/admin/two-factor/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<svg" in text
    device = TOTPDevice.objects.get(user=admin_user)
    assert not device.confirmed
    secret = re.search(r'data-secret="([A-Z2-7]+)"', text).group(1)
    import base64

    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key

    response = client.post("/admin/two-factor/", {"code": code_for(device)})
    assert response.status_code == 302 and response.url == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert admin_opens(client)
    assert client.get("/admin/auth/user/").status_code == 200


def test_enrolment_refuses_a_wrong_code(client, admin_user, two_factor_on):
    post_login(client, PASSWORD)
    client.get("/admin/two-factor/")
    device = TOTPDevice.objects.get(user=admin_user)
    wrong = f"{(int(code_for(device)) + 1) % 1000000:06d}"
    response = client.post("/admin/two-factor/", {"code": wrong})
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    device.refresh_from_db()
    assert not device.confirmed
    assert not admin_opens(client)


def test_with_a_device_the_login_needs_the_code(client, admin_user, two_factor_on):
    device = TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True)

    page = client.get(LOGIN)
    assert b'name="otp_token"' in page.content

    response = post_login(client, PASSWORD)  # no code
    assert response.status_code == 200
    assert b"Please enter the 6-digit code" in response.content
    assert not admin_opens(client)

    wrong = f"{(int(code_for(device)) + 1) % 1000000:06d}"
    response = post_login(client, PASSWORD, otp_token=wrong)
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert not admin_opens(client)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # django-otp slows guessing per device too
    device.throttle_reset()

    response = post_login(client, PASSWORD, otp_token=code_for(device))
    assert response.status_code == 302
    assert admin_opens(client)


def test_a_password_only_session_cannot_enrol_over_an_existing_device(client, admin_user, two_factor_on):
    TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True)
    client.force_login(admin_user)
    response = client.get("/admin/two-factor/")
    assert response.status_code == 302 and response.url == LOGIN
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1
    assert not admin_opens(client)


def test_the_enrolment_page_needs_a_signed_in_staff_user(client, two_factor_on):
    response = client.get("/admin/two-factor/")
    assert response.status_code == 302 and response.url.startswith(LOGIN)


def test_the_first_run_admin_is_led_to_enrol(client, two_factor_on, tmp_path, monkeypatch):
    import io

    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    two_factor_on.DATA_DIR = tmp_path
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "Two-factor login is on" in out.getvalue()

    page = client.post(LOGIN, {"username": "boss", "password": PASSWORD, "next": "/admin/"}, follow=True)
    assert page.redirect_chain[-1][0] == "/admin/two-factor/"
    device = TOTPDevice.objects.get(user__username="boss")
    assert client.post("/admin/two-factor/", {"code": code_for(device)}).status_code == 302
    assert admin_opens(client)


@pytest.mark.parametrize(("debug", "expected"), [("0", "True True"), ("1", "False True")])
def test_production_settings_turn_both_on_and_debug_turns_2fa_off(debug, expected, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REQUIRE_2FA", "AXES_"))}
    env.update(DJANGO_DEBUG=debug, DJANGO_SETTINGS_MODULE="config.settings", CONNECTOR_DATA_DIR=str(tmp_path))
    env.setdefault("SECRET_KEY", "x" * 50)
    env.setdefault("FIELD_ENCRYPTION_KEY", "8Yx3pZbM0P8Ck8sUiZr2m3qW2b9yUOvRZ0xWgsl0c0Q=")
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.REQUIRE_2FA, s.AXES_ENABLED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == expected
