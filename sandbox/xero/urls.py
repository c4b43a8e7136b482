"""Sandbox Xero, mounted at /sandbox/xero/; the hosts login.xero.com, identity.xero.com and
api.xero.com become path prefixes. API paths match case-insensitively, as Xero's do
(the SDK calls ``/Connections``, the docs ``/connections``)."""

from django.urls import path, re_path

from sandbox.xero import views

UUID = r"(?P<{}>[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}})"
API = r"(?i)^api/api\.xro/2\.0/"

urlpatterns = [
    path("login/identity/connect/authorize", views.authorize, name="sandbox-xero-authorize"),
    path("identity/connect/token", views.token, name="sandbox-xero-token"),
    path("identity/connect/revocation", views.revocation, name="sandbox-xero-revocation"),
    re_path(r"(?i)^api/connections$", views.connections, name="sandbox-xero-connections"),
    re_path(
        r"(?i)^api/connections/" + UUID.format("connection_id") + "$",
        views.connection,
        name="sandbox-xero-connection",
    ),
    re_path(API + "contacts$", views.contacts, name="sandbox-xero-contacts"),
    re_path(API + "contacts/" + UUID.format("record_id") + "$", views.contact, name="sandbox-xero-contact"),
    re_path(API + "invoices$", views.invoices, name="sandbox-xero-invoices"),
    re_path(API + "invoices/" + UUID.format("record_id") + "$", views.invoice, name="sandbox-xero-invoice"),
    re_path(API + "payments$", views.payments, name="sandbox-xero-payments"),
    re_path(API + "payments/" + UUID.format("record_id") + "$", views.payment, name="sandbox-xero-payment"),
]
