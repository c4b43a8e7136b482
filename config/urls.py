from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "Xero → Pipedrive"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", include("audit.urls")),  # /admin/health/, before the admin's catch-all
    path("admin/", admin.site.urls),
    path("connect/", include("connector.urls")),
    path("webhooks/", include("connector.webhook_urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
