"""Contract tests: every sandbox Pipedrive response (and accepted request) is checked against the
official OpenAPI specs (openapi-v2.yaml; openapi-v1.yaml for notes, webhooks and merges).

``PipedriveApi`` is the client every sandbox Pipedrive test uses, so each call any of them makes
is validated: the request when the test says it is a valid one, the response whenever the spec
documents its status.
"""

import functools
import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import include
from django.urls import path as route

from sandbox import clock
from sandbox.pipedrive import costs, services
from sandbox.pipedrive.models import Company, User
from sandbox.spec_differences import served_spec

openapi_core = pytest.importorskip("openapi_core")
from openapi_core import OpenAPI  # noqa: E402
from openapi_core.testing import MockRequest, MockResponse  # noqa: E402

# This module is also the URLconf of the Pipedrive tests: the sandbox is mounted only when enabled.
urlpatterns = [route("sandbox/", include("sandbox.urls"))]
pytestmark = pytest.mark.urls("tests.sandbox.test_pipedrive_contract")

HOST = "http://testserver"
MOUNT = "/sandbox/pipedrive"


@functools.cache
def spec(version: str) -> tuple[OpenAPI, dict]:
    document = served_spec("pipedrive", version)
    # Map the spec's servers (api.pipedrive.com/api/v2, /v1) onto the sandbox mount.
    document["servers"] = [{"url": f"{HOST}{MOUNT}/api/{version}"}]
    for spec_path, operations in document["paths"].items():
        if spec_path.startswith(
            "/oauth/"
        ):  # served by oauth.pipedrive.com; the sandbox serves it at the mount
            for operation in operations.values():
                if isinstance(operation, dict) and "servers" in operation:
                    operation["servers"] = [{"url": f"{HOST}{MOUNT}"}]
    return OpenAPI.from_dict(document), document


def _spec_path(version: str, path: str) -> str | None:
    """The spec's templated path for a concrete one, e.g. /deals/7 -> /deals/{id}."""
    _, document = spec(version)
    parts = path.strip("/").split("/")
    for candidate in document["paths"]:
        template = candidate.strip("/").split("/")
        if len(template) == len(parts) and all(
            t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(template, parts, strict=True)
        ):
            exact = sum(t == p for t, p in zip(template, parts, strict=True))
            if exact == sum(not t.startswith("{") for t in template):
                return candidate
    return None


class PipedriveApi:
    """Calls the sandbox like the connector would, validating each exchange against the spec."""

    def __init__(self, client: Client, token: str | None = None, bearer: str | None = None):
        self.client, self.token, self.bearer = client, token, bearer
        self.validated = 0

    def call(self, method, path, body=None, params=None, valid_request=True, validate=True, headers=None):
        version = "v2" if path.startswith("/api/v2/") else "v1"
        sub_path = path.removeprefix(f"/api/{version}")
        request_headers = dict(headers or {})
        if self.token:
            request_headers["x-api-token"] = self.token
        if self.bearer:
            request_headers["Authorization"] = f"Bearer {self.bearer}"
        data = json.dumps(body).encode() if body is not None else None
        url = f"{MOUNT}{path}" + (f"?{urlencode(params)}" if params else "")
        response = self.client.generic(
            method, url, data=data or b"", content_type="application/json", headers=request_headers
        )
        if validate:
            self._validate(version, method, sub_path, params, data, request_headers, response, valid_request)
        return response

    def _validate(self, version, method, sub_path, params, data, headers, response, valid_request):
        api, document = spec(version)
        template = _spec_path(version, sub_path)
        assert template is not None, f"{method} {sub_path} is not in openapi-{version}.yaml"
        operation = document["paths"][template][method.lower()]
        request = MockRequest(
            HOST,
            method.lower(),
            f"{MOUNT}/api/{version}{sub_path}",
            args=params or {},
            headers={"Content-Type": "application/json", **headers},
            data=data,
        )
        if valid_request:
            api.validate_request(request)
        if str(response.status_code) in operation["responses"]:
            api.validate_response(request, MockResponse(response.content, status_code=response.status_code))
            self.validated += 1

    def get(self, path, params=None, **kw):
        return self.call("GET", path, params=params, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body=body, **kw)

    def patch(self, path, body, **kw):
        return self.call("PATCH", path, body=body, **kw)

    def put(self, path, body, **kw):
        return self.call("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def validate_oauth_token_call(form: dict, headers: dict, response) -> None:
    """Check a POST /oauth/token exchange (form body, Basic auth) against openapi-v1.yaml."""
    api, _ = spec("v1")
    request = MockRequest(
        HOST,
        "post",
        f"{MOUNT}/oauth/token",
        headers=headers,
        data=urlencode(form).encode(),
        content_type="application/x-www-form-urlencoded",
    )
    api.validate_request(request)
    api.validate_response(request, MockResponse(response.content, status_code=response.status_code))


@pytest.fixture(name="company")
def company_fixture(db):
    clock.reset()
    return services.ensure_demo_company()


@pytest.fixture(name="api")
def api_fixture(company, client):
    return PipedriveApi(client, token=services.DEMO_API_TOKEN)


def make_company(plan="growth", seats=3, **overrides) -> tuple[Company, User]:
    """Another tenant with its own pipeline, for limit tests with small numbers."""
    company = Company.objects.create(
        name="Limits Ltd", domain=f"limits-{Company.objects.count()}", plan=plan, seats=seats, **overrides
    )
    user = User.objects.create(company=company, name="Lim", email="lim@example.com")
    return company, user


# ------------------------------------------------------------------------------------------------


def test_crud_of_every_record_type_matches_the_v2_spec(api):
    org = api.post(
        "/api/v2/organizations",
        {
            "name": "Acme Ltd",
            "address": {"value": "1 Queen St, Auckland 1010", "country": "New Zealand"},
            "website": "https://acme.example",
        },
    )
    assert org.status_code == 200, org.content
    org_id = org.json()["data"]["id"]
    person = api.post(
        "/api/v2/persons",
        {
            "name": "Jane Doe",
            "org_id": org_id,
            "emails": [{"value": "jane@acme.example", "primary": True, "label": "work"}],
            "phones": [{"value": "+64 9 555 0100"}],
        },
    )
    assert person.status_code == 200, person.content
    person_data = person.json()["data"]
    assert person_data["org_id"] == org_id
    assert person_data["phones"] == [{"value": "+64 9 555 0100", "primary": True, "label": "work"}]
    deal = api.post(
        "/api/v2/deals",
        {
            "title": "INV-001",
            "value": 1150.5,
            "currency": "NZD",
            "org_id": org_id,
            "person_id": person_data["id"],
        },
    )
    assert deal.status_code == 200, deal.content
    deal_data = deal.json()["data"]
    assert deal_data["status"] == "open" and deal_data["value"] == 1150.5
    stages = api.get("/api/v2/stages", {"pipeline_id": deal_data["pipeline_id"]}).json()["data"]
    assert deal_data["stage_id"] == stages[0]["id"]

    patched = api.patch(f"/api/v2/deals/{deal_data['id']}", {"status": "won", "stage_id": stages[-1]["id"]})
    assert patched.json()["data"]["status"] == "won"
    assert patched.json()["data"]["stage_id"] == stages[-1]["id"]
    assert api.get(f"/api/v2/deals/{deal_data['id']}").json()["data"]["won_time"]
    assert api.patch(f"/api/v2/organizations/{org_id}", {"name": "Acme Limited"}).json()["data"]["name"] == (
        "Acme Limited"
    )
    assert api.get(f"/api/v2/persons/{person_data['id']}").status_code == 200
    assert api.get("/api/v2/organizations").json()["data"][0]["name"] == "Acme Limited"
    assert len(api.get("/api/v2/persons").json()["data"]) == 1
    assert api.get("/api/v2/deals", {"status": "won"}).json()["data"][0]["id"] == deal_data["id"]

    for path in (
        f"/api/v2/deals/{deal_data['id']}",
        f"/api/v2/persons/{person_data['id']}",
        f"/api/v2/organizations/{org_id}",
    ):
        deleted = api.delete(path)
        assert deleted.json() == {"success": True, "data": {"id": int(path.rsplit("/", 1)[1])}}
        assert api.get(path).status_code == 404
    assert api.get("/api/v2/deals", {"status": "deleted"}).json()["data"][0]["is_deleted"] is True
    assert api.validated == 15  # every call but the three 404s (the spec documents no 404 body)


def test_pipelines_stages_and_fields_match_the_spec(api):
    pipelines = api.get("/api/v2/pipelines").json()["data"]
    assert [p["name"] for p in pipelines] == ["Sales"]
    assert api.get(f"/api/v2/pipelines/{pipelines[0]['id']}").json()["data"]["name"] == "Sales"
    stages = api.get("/api/v2/stages", {"pipeline_id": pipelines[0]["id"], "sort_by": "order_nr"}).json()[
        "data"
    ]
    assert [s["order_nr"] for s in stages] == [1, 2, 3, 4]
    assert api.get(f"/api/v2/stages/{stages[1]['id']}").json()["data"]["name"] == stages[1]["name"]
    for kind in ("dealFields", "organizationFields", "personFields"):
        fields = api.get(f"/api/v2/{kind}").json()["data"]
        assert fields and all(not f["is_custom_field"] for f in fields)
        assert api.get(f"/api/v2/{kind}/{fields[0]['field_code']}").json()["data"] == fields[0]


def test_invalid_bodies_are_refused_with_pipedrives_error_shape(api):
    response = api.post("/api/v2/organizations", {"name": "X", "bogus": 1}, valid_request=False)
    assert response.status_code == 400
    assert response.json()["success"] is False and "bogus" in response.json()["error"]
    assert api.post("/api/v2/persons", {"org_id": 1}, valid_request=False).status_code == 400
    assert api.post("/api/v2/deals", {"title": "T", "value": "12"}, valid_request=False).status_code == 400
    assert api.get("/api/v2/deals/999999").json()["error"] == "Deal not found"


def test_a_call_without_a_valid_token_is_401(company, client):
    anonymous = PipedriveApi(client)
    response = anonymous.get("/api/v2/deals", valid_request=False)
    assert response.status_code == 401
    assert PipedriveApi(client, token="nope").get("/api/v2/deals", valid_request=False).status_code == 401
    # The legacy query parameter still works, as connectors in the wild use it.
    legacy = client.get(f"{MOUNT}/api/v2/deals", {"api_token": services.DEMO_API_TOKEN})
    assert legacy.status_code == 200


def test_notes_are_v1_with_offset_paging(api):
    deal = api.post("/api/v2/deals", {"title": "INV-9"}).json()["data"]
    for n in range(3):
        created = api.post("/api/v1/notes", {"content": f"Synced from Xero #{n}", "deal_id": deal["id"]})
        assert created.status_code == 200, created.content
        assert created.json()["data"]["deal"] == {"title": "INV-9"}
    page = api.get("/api/v1/notes", {"deal_id": deal["id"], "limit": 2}).json()
    assert [n["content"] for n in page["data"]] == ["Synced from Xero #0", "Synced from Xero #1"]
    assert page["additional_data"]["pagination"] == {
        "start": 0,
        "limit": 2,
        "more_items_in_collection": True,
        "next_start": 2,
    }
    rest = api.get("/api/v1/notes", {"deal_id": deal["id"], "start": 2}).json()
    assert (
        len(rest["data"]) == 1 and rest["additional_data"]["pagination"]["more_items_in_collection"] is False
    )
    assert (
        api.get(f"/api/v1/notes/{page['data'][0]['id']}").json()["data"]["content"] == "Synced from Xero #0"
    )
    assert api.post("/api/v1/notes", {"content": "orphan"}).status_code == 400


def test_users_me_names_the_company_domain(api, company):
    me = api.get("/api/v1/users/me").json()["data"]
    assert me["company_domain"] == company.domain and me["company_id"] == company.id


def test_token_cost_table_is_read_from_the_spec():
    _, v2 = spec("v2")
    _, v1 = spec("v1")
    for version, document in (("v2", v2), ("v1", v1)):
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if isinstance(operation, dict) and "x-token-cost" in operation:
                    assert costs.cost(version, method.upper(), path) == operation["x-token-cost"]
