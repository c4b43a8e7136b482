from django.apps import AppConfig


class MappingConfig(AppConfig):
    """Field and stage mapping rows, the pure mapping engine and record links."""

    name = "mapping"
    verbose_name = "Mappings"
    default_auto_field = "django.db.models.BigAutoField"
