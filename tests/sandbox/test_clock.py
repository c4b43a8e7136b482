"""The sandbox clock moved from outside: POST /sandbox/_clock, read by every process (sandbox/clock.py)."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from sandbox import clock
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = pytest.mark.urls(__name__)

CLOCK = "/sandbox/_clock"


def move(client, **body):
    return client.post(CLOCK, json.dumps(body), content_type="application/json")


def test_a_date_moves_the_clock_to_noon_that_day_and_it_runs_on(client):
    answer = move(client, date="2030-12-10")
    assert answer.status_code == 200, answer.content
    assert answer.json()["date"] == "2030-12-10" and answer.json()["moved"] is True
    moved = clock.now()
    assert (
        dt.datetime(2030, 12, 10, 12, tzinfo=dt.UTC)
        <= moved
        < dt.datetime(2030, 12, 10, 12, 1, tzinfo=dt.UTC)
    )
    assert client.get(CLOCK).json()["date"] == "2030-12-10"
    assert clock.now() >= moved  # it runs on from there


def test_a_date_in_a_named_time_zone_and_a_datetime_with_its_offset(client):
    answer = move(client, date="2030-12-10", timezone="NEWZEALANDSTANDARDTIME")
    assert answer.status_code == 200, answer.content
    # Noon in Auckland (UTC+13 in December) is 23:00 UTC the day before.
    assert clock.now().astimezone(dt.UTC).replace(second=0, microsecond=0) == dt.datetime(
        2030, 12, 9, 23, 0, tzinfo=dt.UTC
    )
    answer = move(client, datetime="2030-12-11T07:00:00+13:00")
    assert answer.status_code == 200, answer.content
    assert clock.now().astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") == "2030-12-10 18:00"


def test_reset_goes_back_to_real_time(client):
    move(client, date="2030-12-10")
    answer = move(client, reset=True)
    assert answer.status_code == 200 and answer.json()["moved"] is False
    assert abs((clock.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert not clock.shared_clock_file().exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "send"),
        ({"date": "2030-13-40"}, "not a date"),
        ({"date": "tomorrow"}, "not a date"),
        ({"date": 20301210}, "not a date"),
        ({"datetime": "2030-12-10T07:00:00"}, "UTC offset"),
        ({"datetime": "soon"}, "ISO 8601"),
        ({"date": "2030-12-10", "datetime": "2030-12-10T07:00:00Z"}, "one of"),
        ({"date": "2030-12-10", "timezone": "Mars/Olympus"}, "not a time zone"),
        ({"date": "2030-12-10", "speed": 2}, "unknown field"),
        ({"reset": "yes"}, "reset"),
        ({"date": "2020-01-01"}, "only moves forward"),
    ],
)
def test_bad_input_is_400_with_the_reason_and_changes_nothing(client, body, reason):
    move(client, date="2030-12-10")
    before = client.get(CLOCK).json()
    answer = move(client, **body)
    assert answer.status_code == 400, answer.content
    assert reason in answer.json()["detail"]
    after = client.get(CLOCK).json()
    assert after["date"] == before["date"] and after["offset_seconds"] == before["offset_seconds"]


def test_not_json_is_400(client):
    answer = client.post(CLOCK, b"{not json", content_type="application/json")
    assert answer.status_code == 400 and clock.state()["moved"] is False


def test_the_clock_is_refused_without_the_control_token_or_a_staff_session(anonymous_client):
    assert anonymous_client.get(CLOCK).status_code == 401
    assert move(anonymous_client, date="2030-12-10").status_code == 401
    wrong = anonymous_client.post(
        CLOCK,
        json.dumps({"date": "2030-12-10"}),
        content_type="application/json",
        headers={"X-Sandbox-Token": "x"},
    )
    assert wrong.status_code == 403
    assert clock.state()["moved"] is False


@pytest.mark.django_db
def test_a_non_staff_user_is_refused(anonymous_client, django_user_model):
    user = django_user_model.objects.create_user("sales", password="pw-1234567")
    anonymous_client.force_login(user)
    assert move(anonymous_client, date="2030-12-10").status_code == 403
    assert clock.state()["moved"] is False


def test_another_process_reads_the_moved_clock(client):
    move(client, date="2030-12-10")
    script = "import django; django.setup(); from sandbox import clock; print(clock.now().date().isoformat())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    env["CONNECTOR_DATA_DIR"] = str(settings.DATA_DIR)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    assert out.stdout.strip() == "2030-12-10"
