"""Mounted under /sandbox/ only when SANDBOX_ENABLED is on."""

from django.urls import include, path

from sandbox import views

urlpatterns = [
    path("xero/", include("sandbox.xero.urls")),
    path("pipedrive/", include("sandbox.pipedrive.urls")),
    path("<str:service>/_faults", views.fault_switches, name="sandbox-faults"),
    path("<str:service>/_counters", views.call_counters, name="sandbox-counters"),
    path("<str:service>/_reset", views.reset, name="sandbox-reset"),
]
