"""The emulated Pipedrive at /sandbox/pipedrive/: the connector's PIPEDRIVE_API_URL and api_domain."""

from django.http import JsonResponse
from django.urls import path, re_path, register_converter

from sandbox.pipedrive import guard, views


class RecordIdConverter:
    """A Pipedrive id: digits within 64 bits; anything else falls through to the JSON 404."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > 2**63 - 1:
            raise ValueError(value)
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(RecordIdConverter, "pdid")


def not_found(request, rest=""):
    """Any other path under the emulator: Pipedrive's JSON error, never Django's HTML page."""
    return guard.error(404, "Unknown method .")


def root(request):
    return JsonResponse({"service": "sandbox pipedrive", "api": ["api/v2/", "api/v1/"]})


urlpatterns = [
    path("", root, name="sandbox-pipedrive-root"),
    path("oauth/authorize", views.authorize, name="sandbox-pipedrive-authorize"),
    path("oauth/token", views.token, name="sandbox-pipedrive-token"),
    path("api/v2/organizations", views.organizations),
    path("api/v2/organizations/search", views.organization_search),
    path("api/v2/organizations/<pdid:record_id>", views.organization),
    path("api/v2/persons", views.persons),
    path("api/v2/persons/search", views.person_search),
    path("api/v2/persons/<pdid:record_id>", views.person),
    path("api/v2/deals", views.deals),
    path("api/v2/deals/search", views.deal_search),
    path("api/v2/deals/<pdid:record_id>", views.deal),
    path("api/v2/activities", views.activities),
    path("api/v2/activities/<pdid:record_id>", views.activity),
    path("api/v2/itemSearch", views.item_search),
    path("api/v2/itemSearch/field", views.item_search_field),
    path("api/v2/dealFields", views.deal_fields),
    path("api/v2/dealFields/<str:field_code>", views.deal_field),
    path("api/v2/organizationFields", views.organization_fields),
    path("api/v2/organizationFields/<str:field_code>", views.organization_field),
    path("api/v2/personFields", views.person_fields),
    path("api/v2/personFields/<str:field_code>", views.person_field),
    path("api/v2/pipelines", views.pipelines),
    path("api/v2/pipelines/<pdid:record_id>", views.pipeline),
    path("api/v2/stages", views.stages),
    path("api/v2/stages/<pdid:record_id>", views.stage),
    path("api/v1/notes", views.notes),
    path("api/v1/notes/<pdid:record_id>", views.note),
    path("api/v1/users/me", views.users_me),
    path("api/v1/webhooks", views.webhooks),
    path("api/v1/webhooks/<pdid:record_id>", views.webhook),
    path("api/v1/organizations/<pdid:record_id>/merge", views.organization_merge),
    path("api/v1/persons/<pdid:record_id>/merge", views.person_merge),
    path("api/v1/deals/<pdid:record_id>/merge", views.deal_merge),
    re_path(r"^(?P<rest>(?!_).*)$", not_found),  # _faults, _counters: sandbox/urls.py,
]
