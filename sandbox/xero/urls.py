"""Sandbox Xero, mounted at /sandbox/xero/; the hosts login.xero.com, identity.xero.com and
api.xero.com become path prefixes. Resource names answer in both the documented and the
lower-case spelling (the SDK calls ``/Connections``, the docs ``/connections``), as Xero does.
"""

from django.urls import path, re_path

from sandbox.xero import views
from sandbox.xero.guard import problem


def not_found(request, rest=""):
    """Any other path under the emulator: Xero's JSON problem, never Django's HTML page."""
    return problem(404, "Not Found", "The resource you're looking for cannot be found")


API = "api/api.xro/2.0/"


def both_cases(route: str, view, name: str) -> list:
    """The route as written (named, reversible) and its lower-case spelling."""
    patterns = [path(route, view, name=name)]
    lower = route.replace("<uuid:", "\0").lower().replace("\0", "<uuid:")
    if lower != route:
        patterns.append(path(lower, view))
    return patterns


urlpatterns = [
    path("login/identity/connect/authorize", views.authorize, name="sandbox-xero-authorize"),
    path("identity/connect/token", views.token, name="sandbox-xero-token"),
    path("identity/connect/revocation", views.revocation, name="sandbox-xero-revocation"),
    *both_cases("api/Connections", views.connections, "sandbox-xero-connections"),
    *both_cases("api/Connections/<uuid:connection_id>", views.connection, "sandbox-xero-connection"),
    *both_cases(API + "Organisation", views.organisation, "sandbox-xero-organisation"),
    *both_cases(API + "Contacts", views.contacts, "sandbox-xero-contacts"),
    *both_cases(API + "Contacts/<uuid:record_id>", views.contact, "sandbox-xero-contact"),
    *both_cases(API + "Invoices", views.invoices, "sandbox-xero-invoices"),
    *both_cases(API + "Invoices/<uuid:record_id>", views.invoice, "sandbox-xero-invoice"),
    *both_cases(API + "Payments", views.payments, "sandbox-xero-payments"),
    *both_cases(API + "Payments/<uuid:record_id>", views.payment, "sandbox-xero-payment"),
    *both_cases(API + "CreditNotes", views.credit_notes, "sandbox-xero-credit-notes"),
    *both_cases(API + "CreditNotes/<uuid:record_id>", views.credit_note, "sandbox-xero-credit-note"),
    *both_cases(
        API + "CreditNotes/<uuid:record_id>/Allocations",
        views.credit_note_allocations,
        "sandbox-xero-credit-note-allocations",
    ),
    re_path(r"^(?P<rest>(?!_).*)$", not_found),  # _faults, _counters: sandbox/urls.py
]
