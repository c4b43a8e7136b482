from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    """Connections, sync pairs, OAuth2, API clients, rate limits, webhook intake and the sync services."""

    name = "connector"
    verbose_name = "Connections and sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # each registers on import (checks, signal receivers, admin pages): once the registry is ready
        from connector import checks, signals  # noqa: F401

        # admin pages register on import, once the registry is ready
        from connector.admin import backfill as admin_backfill  # noqa: F401

        # admin pages register on import, once the registry is ready
        from connector.admin import inbox as admin_inbox  # noqa: F401

        # admin pages register on import, once the registry is ready
        from connector.admin import limits as admin_limits  # noqa: F401
