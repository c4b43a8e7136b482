from django.apps import AppConfig


class SandboxXeroConfig(AppConfig):
    """The emulated Xero API: its records, auth and webhooks."""

    name = "sandbox.xero"
    label = "sandbox_xero"
    verbose_name = "Sandbox Xero"
    default_auto_field = "django.db.models.BigAutoField"
