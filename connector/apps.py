from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    """Connections, sync pairs, OAuth2, API clients, rate limits, webhook intake and the sync services."""

    name = "connector"
    verbose_name = "Connections and sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # each registers on import (the start-up checks, the signal receivers) once the registry is
        # ready; the admin pages register through Django's autodiscovery of connector.admin
        from connector import checks, signals  # noqa: F401
