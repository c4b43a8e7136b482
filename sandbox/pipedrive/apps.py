from django.apps import AppConfig


class SandboxPipedriveConfig(AppConfig):
    """The emulated Pipedrive API: its records, auth and webhooks."""

    name = "sandbox.pipedrive"
    label = "sandbox_pipedrive"
    verbose_name = "Sandbox Pipedrive"
    default_auto_field = "django.db.models.BigAutoField"
