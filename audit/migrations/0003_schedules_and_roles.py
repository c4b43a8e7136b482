"""The audit app's django-q2 schedules (alerts, paused bulk replays, retention) and the two roles:
"Finance" (mapping rows and credit limits, sync records, inbox events, replay; no connections or
secrets) and "Integration admin" (everything of the connector, mapping, audit and task queue)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SCHEDULES = {
    "audit: check alerts": {"func": "audit.tasks.check_alerts", "schedule_type": "I", "minutes": 5},
    "audit: resume bulk replays": {"func": "audit.tasks.resume_replays", "schedule_type": "I", "minutes": 1},
    "audit: prune old history": {"func": "audit.tasks.prune_history", "schedule_type": "D"},
}

FINANCE = {
    "mapping": {
        "fieldmapping": ["view", "add", "change", "delete"],
        "stagemapping": ["view", "add", "change", "delete"],
        "creditlimit": ["view", "add", "change", "delete"],
        "recordlink": ["view"],
    },
    "audit": {"syncrecord": ["view", "replay"], "replayrun": ["view"], "alert": ["view"]},
    "connector": {"webhookevent": ["view"], "deferredjob": ["view"], "apiratewindow": ["view"]},
}
ADMIN_APPS = ["connector", "mapping", "audit", "django_q"]


def add_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, fields in SCHEDULES.items():
        Schedule.objects.get_or_create(name=name, defaults={**fields, "repeats": -1})


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


def add_roles(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        historical = getattr(app_config, "models_module", None) is None
        if historical:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        if historical:
            app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    finance, _ = Group.objects.get_or_create(name="Finance")
    for app, models in FINANCE.items():
        for model, actions in models.items():
            codenames = [f"{action}_{model}" for action in actions]
            finance.permissions.add(
                *Permission.objects.filter(content_type__app_label=app, codename__in=codenames)
            )
    admins, _ = Group.objects.get_or_create(name="Integration admin")
    admins.permissions.add(*Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Finance", "Integration admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_sync_story_replay_alerts"),
        ("connector", "0008_merge_inbox_and_index"),
        ("mapping", "0003_link_creating"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(add_schedules, remove_schedules),
        migrations.RunPython(add_roles, remove_roles),
    ]
