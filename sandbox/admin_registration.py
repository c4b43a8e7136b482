"""Admin registration of the sandbox's models, only while ``SANDBOX_ENABLED`` is on.

The admin modules are imported (by the admin's autodiscovery) whatever the setting; with the
sandbox off their ``@register`` does nothing, so no sandbox page, form or secret is reachable
through ``/admin/``. The setting is read at import time: changing it needs a restart.
"""

from django.conf import settings
from django.contrib import admin


def enabled() -> bool:
    return bool(getattr(settings, "SANDBOX_ENABLED", False))


def register(*models, site=None):
    """``admin.register`` when the sandbox is on; otherwise the class is left unregistered."""
    if enabled():
        return admin.register(*models, site=site)

    def leave_unregistered(admin_class):
        return admin_class

    return leave_unregistered
