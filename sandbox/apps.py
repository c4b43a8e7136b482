from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Emulators of the Xero and Pipedrive APIs for demos, tests and benchmarks."""

    name = "sandbox"
    verbose_name = "Sandbox (Xero and Pipedrive emulators)"
    default_auto_field = "django.db.models.BigAutoField"
