"""The sync tests' URLconf plus the panel endpoint (named by PANEL_MARKS)."""

import pytest
from django.urls import include, path

from tests.connector.sync.harness import SYNC_URLS

urlpatterns = [*SYNC_URLS, path("pipedrive/panel/", include("connector.panel.urls"))]
PANEL_MARKS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.connector.panel.sandbox.urls"),
]
