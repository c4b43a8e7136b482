"""Stored task paths follow the modules to their new packages (connector/ split by job).

django-q2 schedules and deferred jobs name the function to run as a dotted path; rows written
before the move (by audit 0003, connector 0003, or at run time) would otherwise fail to import on
the workers. Only paths of modules that moved are rewritten; the reverse restores them.
"""

from django.db import migrations

MOVED = [
    ("audit.alerts.", "connector.operations.alerts."),
    ("audit.replay.", "connector.operations.replay."),
    ("audit.tasks.", "connector.operations.tasks."),
    ("connector.backfill.", "connector.operations.backfill."),
    ("connector.budget.", "connector.limits.budget."),
    ("connector.drain.", "connector.intake.drain."),
    ("connector.inbox.", "connector.intake.inbox."),
    ("connector.oauth.", "connector.connections.oauth."),
    ("connector.pairs.", "connector.setup.pairs."),
    ("connector.pipedrive_index.", "connector.sync.pipedrive_index."),
    ("connector.pipedrive_setup.", "connector.setup.pipedrive_fields."),
    ("connector.pipedrive_webhooks.", "connector.setup.pipedrive_webhooks."),
    ("connector.ratelimit.", "connector.limits.ratelimit."),
    ("connector.reconciliation.", "connector.operations.reconciliation."),
    ("connector.setup_status.", "connector.setup.status."),
]


def rewrite(apps, pairs):
    for model in (apps.get_model("django_q", "Schedule"), apps.get_model("connector", "DeferredJob")):
        for row in model.objects.all().only("pk", "func"):
            for old, new in pairs:
                if old != new and row.func.startswith(old):
                    model.objects.filter(pk=row.pk).update(func=new + row.func[len(old) :])
                    break


def forwards(apps, schema_editor):
    rewrite(apps, MOVED)


def backwards(apps, schema_editor):
    rewrite(apps, [(new, old) for old, new in MOVED])


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0011_webhookevent_lost_claims"),
        ("audit", "0003_schedules_and_roles"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
