from django.apps import AppConfig


class AuditConfig(AppConfig):
    """A record of every sync, with replay."""

    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"
