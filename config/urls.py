from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", include("connector.operations.urls")),  # /admin/health/, before the admin's catch-all
    path("admin/", admin.site.urls),
    path("connect/", include("connector.connections.urls")),
    path("webhooks/", include("connector.intake.urls")),
    path("pipedrive/panel/", include("connector.panel.urls")),  # the JSON panel Pipedrive draws
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
