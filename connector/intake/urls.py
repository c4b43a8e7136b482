"""Webhook receiver URLs: one per service and sync pair, keyed by the pair's unguessable key."""

from django.urls import path

from connector.intake.receivers import PipedriveWebhookView, XeroWebhookView

app_name = "webhooks"

urlpatterns = [
    path("xero/<str:pair_key>/", XeroWebhookView.as_view(), name="xero"),
    path("pipedrive/<str:pair_key>/", PipedriveWebhookView.as_view(), name="pipedrive"),
]
