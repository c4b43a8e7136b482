from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    """Connections, sync pairs, OAuth2, API clients, rate limits, webhook intake and the sync services."""

    name = "connector"
    verbose_name = "Connections and sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from connector import (  # noqa: F401  (registers checks and signal handlers)
            admin_backfill,
            admin_inbox,
            admin_limits,
            checks,
            signals,
        )
