"""The task queue's admin runs code on a worker (a schedule names any dotted function): only a
superuser may add, change or delete there; the "Integration admin" role only looks."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule, Task

pytestmark = pytest.mark.django_db

SCHEDULE_FORM = {
    "name": "evil",
    "func": "builtins.open",
    "args": "'/etc/passwd'",
    "kwargs": "",
    "schedule_type": "O",
    "minutes": "",
    "repeats": "-1",
    "next_run_0": "2026-12-07",
    "next_run_1": "08:00:00",
    "cron": "",
    "cluster": "",
    "intended_date_kwarg": "",
}


def test_an_integration_admin_cannot_add_a_schedule(client, integration_admin):
    client.force_login(integration_admin)
    before = Schedule.objects.count()
    assert client.get(reverse("admin:django_q_schedule_add")).status_code == 403
    assert client.post(reverse("admin:django_q_schedule_add"), SCHEDULE_FORM).status_code == 403
    assert Schedule.objects.count() == before
    assert not Schedule.objects.filter(func="builtins.open").exists()


def test_an_integration_admin_sees_schedules_read_only(client, integration_admin):
    schedule = Schedule.objects.create(
        name="audit: sample", func="connector.operations.tasks.check_alerts", schedule_type="I"
    )
    client.force_login(integration_admin)
    url = reverse("admin:django_q_schedule_change", args=[schedule.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="func"' not in page.content  # no input: the fields are shown, not editable
    assert b'name="_save"' not in page.content
    client.post(url, {**SCHEDULE_FORM, "name": schedule.name})
    schedule.refresh_from_db()
    assert schedule.func == "connector.operations.tasks.check_alerts"
    assert (
        client.post(
            reverse("admin:django_q_schedule_delete", args=[schedule.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Schedule.objects.filter(pk=schedule.pk).exists()
    changelist = client.get(reverse("admin:django_q_schedule_changelist"))
    assert changelist.status_code == 200 and b"Resubmit" not in changelist.content


def test_an_integration_admin_cannot_resubmit_failed_tasks(client, integration_admin, django_user_model):
    # A failed task row, so the changelist renders its actions at all.
    now = timezone.now()
    Task.objects.create(
        id="f" * 32, name="failed-one", func="math.floor", started=now, stopped=now, success=False
    )
    root = django_user_model.objects.create_superuser("root2", "r2@example.com", "pw-for-tests-1")
    client.force_login(root)
    assert b"resubmit_task" in client.get(reverse("admin:django_q_failure_changelist")).content
    client.force_login(integration_admin)
    page = client.get(reverse("admin:django_q_failure_changelist"))
    assert page.status_code == 200
    assert b"resubmit_task" not in page.content


def test_a_superuser_still_adds_schedules(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw-for-tests-1")
    client.force_login(root)
    assert client.get(reverse("admin:django_q_schedule_add")).status_code == 200
