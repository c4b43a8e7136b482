"""The django-q2 schedule that refreshes quiet connections well before the 60-day refresh-token expiry."""

from django.db import migrations

NAME = "connector: refresh quiet connections"


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={"func": "connector.tasks.refresh_quiet_connections", "schedule_type": "D", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0003_api_limits"),
        ("django_q", "__latest__"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
