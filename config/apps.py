from django.contrib.admin.apps import AdminConfig


class ConnectorAdminConfig(AdminConfig):
    """Django's admin with the connector's own site: grouped home and menu, the guided setup page."""

    default_site = "config.admin_site.ConnectorAdminSite"
