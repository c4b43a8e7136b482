"""The JSON panel's API endpoint, mounted at /pipedrive/panel/ (config/urls.py)."""

from django.urls import path

from connector.panel import views

app_name = "panel"

urlpatterns = [
    path("<str:key>/", views.panel, name="panel"),
]
