"""Every stored task path names a function the workers can import, before and after the move of
connector's modules into packages (connector/migrations/0012)."""

import importlib

import pytest
from django.apps import apps
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from connector.models import DeferredJob
from connector.operations import reconciliation

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("connector.migrations.0012_task_paths_after_the_move")


def test_every_schedule_after_migrate_names_an_importable_function(sync_pair_schedules):
    funcs = sorted(Schedule.objects.values_list("func", flat=True))
    assert "connector.operations.tasks.check_alerts" in funcs
    assert "connector.limits.budget.run_due_jobs" in funcs
    for func in funcs:
        assert callable(import_string(func)), func


@pytest.fixture
def sync_pair_schedules(pair):
    reconciliation.ensure_schedule(pair)  # a schedule made at run time, not by a migration


def test_rows_written_before_the_move_are_rewritten_and_the_reverse_restores_them(pair):
    Schedule.objects.all().delete()
    old_paths = ["audit.tasks.check_alerts", "connector.budget.run_due_jobs", "connector.tasks.sweep_inbox"]
    for func in old_paths:
        Schedule.objects.create(name=func, func=func, schedule_type=Schedule.MINUTES, minutes=5)
    job = DeferredJob.objects.create(
        scope="1", job_name="j", func="connector.reconciliation.reconcile_pair", run_after=timezone.now()
    )
    MIGRATION.forwards(apps, None)
    assert sorted(Schedule.objects.values_list("func", flat=True)) == [
        "connector.limits.budget.run_due_jobs",
        "connector.operations.tasks.check_alerts",
        "connector.tasks.sweep_inbox",  # did not move: untouched
    ]
    for func in Schedule.objects.values_list("func", flat=True):
        assert callable(import_string(func)), func
    job.refresh_from_db()
    assert callable(import_string(job.func))
    MIGRATION.forwards(apps, None)  # a second run changes nothing
    assert Schedule.objects.filter(func="connector.operations.tasks.check_alerts").count() == 1
    MIGRATION.backwards(apps, None)
    assert sorted(Schedule.objects.values_list("func", flat=True)) == sorted(old_paths)
