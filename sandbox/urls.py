"""Mounted under /sandbox/ only when SANDBOX_ENABLED is on."""

from django.urls import include, path

from sandbox import pages, views

urlpatterns = [
    path("", pages.overview, name="sandbox-overview"),
    path("_clock", views.sandbox_clock, name="sandbox-clock"),
    path("_webhooks/", views.webhook_subscriptions, name="sandbox-webhooks"),
    path("_webhooks/deliveries", views.webhook_deliveries, name="sandbox-webhook-deliveries"),
    path("_webhooks/deliver", views.webhook_deliver_now, name="sandbox-webhook-deliver"),
    path(
        "_webhooks/<int:pk>/intent-to-receive",
        views.webhook_intent_to_receive,
        name="sandbox-webhook-intent-to-receive",
    ),
    path("xero/", include("sandbox.xero.urls")),
    path("pipedrive/", include("sandbox.pipedrive.urls")),
    path("pipedrive/_panels", views.pipedrive_panels, name="sandbox-pipedrive-panels"),
    path("<str:service>/_faults", views.fault_switches, name="sandbox-faults"),
    path("<str:service>/_counters", views.call_counters, name="sandbox-counters"),
    path("<str:service>/_reset", views.reset, name="sandbox-reset"),
]
