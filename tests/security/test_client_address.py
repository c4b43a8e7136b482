"""The address the login lockout counts (security issue 22): X-Forwarded-For only behind a proxy.

Without ``BEHIND_PROXY`` the header is the client's own words: rotating it must not dodge the lockout.
Behind a proxy (``PROXY_COUNT`` 1) the client is the address the proxy appended, the rightmost entry.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from config import env as envparse
from config.client_ip import client_ip

PASSWORD = "a-long-right-password-1"
LOGIN = "/admin/login/"
PROXY = "10.0.0.2"  # the reverse proxy's own address: REMOTE_ADDR of every request behind it


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


@pytest.fixture
def axes_on(settings, db):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()
    return settings


@pytest.fixture
def behind_proxy(settings):
    settings.PROXY_COUNT = 1
    return settings


def login(client, password, forwarded=None, remote=PROXY):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    data = {"username": "boss", "password": password, "next": "/admin/"}
    return client.post(LOGIN, data, **extra).status_code


def test_behind_proxy_failures_from_one_forwarded_client_lock_that_client_only(
    client, admin_user, axes_on, behind_proxy
):
    # Every request reaches the app from the proxy; the client is what the proxy appended.
    attacker = "203.0.113.7"
    answers = [login(client, f"wrong-{n}", forwarded=f"198.51.100.{n}, {attacker}") for n in range(8)]
    assert answers[:4] == [200] * 4 and set(answers[5:]) == {429}
    assert login(client, PASSWORD, forwarded=attacker) == 429  # even the right password, from there
    # Another client behind the same proxy is not locked out with it.
    assert login(client, PASSWORD, forwarded="192.0.2.44") == 302

    from axes.models import AccessAttempt

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {attacker}


def test_without_a_proxy_rotating_x_forwarded_for_does_not_avoid_the_lockout(client, admin_user, axes_on):
    assert axes_on.PROXY_COUNT == 0
    answers = [
        login(client, f"wrong-{n}", forwarded=f"198.51.100.{n}", remote="203.0.113.9") for n in range(8)
    ]
    assert answers[:4] == [200] * 4 and set(answers[5:]) == {429}
    assert login(client, PASSWORD, forwarded="192.0.2.1", remote="203.0.113.9") == 429

    from axes.models import AccessAttempt

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.2"),  # no proxy: the header is ignored
        (1, None, "10.0.0.2"),  # behind a proxy that sent no header: the connection
        (1, "1.2.3.4", "1.2.3.4"),
        (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client's own entry (left) is not trusted
        (1, " 1.2.3.4 ,", "1.2.3.4"),
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "not-an-address", "10.0.0.2"),  # garbage never reaches the lockout's address column
        (2, "6.6.6.6, 1.2.3.4, 10.0.0.1", "1.2.3.4"),
        (2, "1.2.3.4", "1.2.3.4"),
    ],
)
def test_client_ip_rule(settings, proxies, forwarded, expected):
    settings.PROXY_COUNT = proxies
    extra = {"REMOTE_ADDR": "10.0.0.2"}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_ip(RequestFactory().get("/", **extra)) == expected


def test_behind_proxy_sets_one_trusted_proxy_for_axes_and_drf():
    assert envparse.https_settings({}, debug=False)["PROXY_COUNT"] == 0
    assert envparse.https_settings({"BEHIND_PROXY": "1"}, debug=False)["PROXY_COUNT"] == 1
    from django.conf import settings

    assert settings.AXES_CLIENT_IP_CALLABLE == "config.client_ip.client_ip"
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.PROXY_COUNT  # never None: DRF would trust XFF
