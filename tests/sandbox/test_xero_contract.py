"""Contract tests: sandbox Xero requests and responses validated against Xero's official OpenAPI specs.

The specs are the vendored copies in specs/xero (XeroAPI/Xero-OpenAPI, see its SOURCE.md);
the sandbox's paths are mapped onto the spec's servers (api.xero.com).
"""

import copy
import json
import re
import warnings
from urllib.parse import urlencode

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from specs import load_spec
from tests.sandbox.conftest import REDIRECT_URI, SANDBOX_URLS, XERO, XERO_API, authorize, token_request

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

HOST = "https://api.xero.com"


@pytest.fixture(scope="session")
def accounting_spec():
    return copy.deepcopy(load_spec("xero", "accounting"))


@pytest.fixture(scope="session")
def accounting_api(accounting_spec):
    # The official spec is validated upstream; skipping re-validation keeps the session quick.
    return OpenAPI.from_dict(accounting_spec, config=Config(spec_validator_cls=None))


@pytest.fixture(scope="session")
def identity_spec():
    return copy.deepcopy(load_spec("xero", "identity"))


@pytest.fixture(scope="session")
def identity_api(identity_spec):
    # The spec declares createdDateUtc/updatedDateUtc as RFC 3339 date-time, yet its own example
    # (and the live API) sends them without an offset ("2019-12-07T18:46:19.5165400"). The sandbox
    # follows the live form, so only that format keyword is dropped here; see the test below.
    spec = copy.deepcopy(identity_spec)
    for field in ("createdDateUtc", "updatedDateUtc"):
        spec["components"]["schemas"]["Connection"]["properties"][field].pop("format")
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


class Contract:
    """Calls the sandbox and validates the request and the response against the spec."""

    def __init__(self, xero, api, sandbox_prefix, spec_prefix):
        self.xero, self.api = xero, api
        self.sandbox_prefix, self.spec_prefix = sandbox_prefix, spec_prefix
        self.checked = 0

    def __call__(self, method, path, params=None, body=None, expect=200, tenant=True, **headers):
        params = params or {}
        data = json.dumps(body).encode() if body is not None else b""
        sent = {"Authorization": f"Bearer {self.xero.tokens['access_token']}", "Accept": "application/json"}
        if tenant:
            sent["xero-tenant-id"] = self.xero.tenant_id
        sent |= headers
        url = f"{self.sandbox_prefix}{path}" + (f"?{urlencode(params)}" if params else "")
        django_headers = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in sent.items()}
        call = getattr(self.xero.client, method.lower())
        if method in ("PUT", "POST"):
            response = call(url, data, content_type="application/json", **django_headers)
        else:
            response = call(url, **django_headers)
        assert response.status_code == expect, response.content
        request = MockRequest(
            HOST,
            method.lower(),
            self.spec_prefix + path,
            args=params,
            headers=sent,
            data=data,
            content_type="application/json" if data else None,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openapi-core does not check OAuth2 itself: "Unsupported scheme"
            self.api.validate_request(request)
            self.api.validate_response(
                request,
                MockResponse(
                    response.content,
                    status_code=response.status_code,
                    content_type=response.get("Content-Type", "application/json").split(";")[0],
                    headers=dict(response.headers),
                ),
            )
        self.checked += 1
        return response.json() if response.content else None


@pytest.fixture
def accounting(xero, accounting_api):
    return Contract(xero, accounting_api, XERO_API, "/api.xro/2.0")


@pytest.fixture
def identity_calls(xero, identity_api):
    return Contract(xero, identity_api, f"{XERO}/api", "")


def test_accounting_reads_and_writes_match_the_spec(accounting):
    contacts = accounting(
        "PUT",
        "/Contacts",
        body={
            "Contacts": [
                {
                    "Name": "Contract Ltd",
                    "EmailAddress": "ap@contract.example",
                    "FirstName": "Cora",
                    "LastName": "Tract",
                    "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555 0101"}],
                    "Addresses": [{"AddressType": "POBOX", "AddressLine1": "PO Box 1", "City": "Wellington"}],
                }
            ]
        },
    )
    contact_id = contacts["Contacts"][0]["ContactID"]
    accounting("POST", "/Contacts", body={"Contacts": [{"ContactID": contact_id, "AccountNumber": "A-1"}]})
    accounting(
        "POST", f"/Contacts/{contact_id}", body={"Contacts": [{"EmailAddress": "new@contract.example"}]}
    )
    invoices = accounting(
        "PUT",
        "/Invoices",
        body={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "Date": "2026-01-10",
                    "DueDate": "2026-02-10",
                    "Status": "AUTHORISED",
                    "LineAmountTypes": "Exclusive",
                    "LineItems": [
                        {"Description": "Audit", "Quantity": 2, "UnitAmount": 300, "AccountCode": "200"}
                    ],
                }
            ]
        },
    )
    invoice_id = invoices["Invoices"][0]["InvoiceID"]
    accounting("POST", f"/Invoices/{invoice_id}", body={"Invoices": [{"Reference": "PO 77"}]})
    accounting("POST", "/Invoices", body={"Invoices": [{"InvoiceID": invoice_id, "Reference": "PO 78"}]})
    payments = accounting(
        "PUT",
        "/Payments",
        body={
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice_id},
                    "Account": {"Code": "090"},
                    "Date": "2026-01-20",
                    "Amount": 100,
                }
            ]
        },
    )
    payment_id = payments["Payments"][0]["PaymentID"]
    accounting(
        "POST",
        "/Payments",
        body={
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": "090"},
            "Date": "2026-01-21",
            "Amount": 5,
        },
    )

    for path in ("/Contacts", "/Invoices", "/Payments"):
        accounting("GET", path)
        accounting("GET", path, params={"page": 1, "pageSize": 50})
        accounting("GET", path, If_Modified_Since="2020-02-06T12:17:43.202-08:00")
    accounting(
        "GET", "/Contacts", params={"IDs": contact_id, "includeArchived": "true", "summaryOnly": "true"}
    )
    accounting(
        "GET", "/Contacts", params={"where": 'EmailAddress=="new@contract.example"', "order": "Name DESC"}
    )
    accounting(
        "GET",
        "/Invoices",
        params={"Statuses": "AUTHORISED,PAID", "ContactIDs": contact_id, "summaryOnly": "true"},
    )
    accounting("GET", "/Invoices", params={"where": 'Status=="AUTHORISED" && Date>=DateTime(2026,01,01)'})
    accounting("GET", "/Payments", params={"where": f'Invoice.InvoiceID==Guid("{invoice_id}")'})
    accounting("GET", f"/Contacts/{contact_id}")
    accounting("GET", f"/Invoices/{invoice_id}")
    accounting("GET", f"/Payments/{payment_id}")
    deleted = accounting("POST", f"/Payments/{payment_id}", body={"Status": "DELETED"})
    assert deleted["Payments"][0]["Status"] == "DELETED"
    assert accounting.checked == 26


def test_validation_errors_match_the_spec(accounting):
    accounting("PUT", "/Contacts", body={"Contacts": [{"Name": "Twin"}]})
    error = accounting("PUT", "/Contacts", body={"Contacts": [{"Name": "Twin"}]}, expect=400)
    assert error["Type"] == "ValidationException"
    error = accounting(
        "PUT", "/Invoices", body={"Invoices": [{"Type": "ACCREC", "Contact": {"Name": "Nobody"}}]}, expect=400
    )
    assert error["Elements"][0]["ValidationErrors"]
    mixed = accounting(
        "PUT",
        "/Contacts",
        params={"summarizeErrors": "false"},
        body={"Contacts": [{"Name": "Solo"}, {"Name": "Twin"}]},
    )
    assert [c["StatusAttributeString"] for c in mixed["Contacts"]] == ["OK", "ERROR"]


def test_connections_match_the_identity_spec(identity_calls, identity_spec):
    listed = identity_calls("GET", "/Connections", tenant=False)
    assert len(listed) == 2
    identity_calls("GET", "/Connections", params={"authEventId": listed[0]["authEventId"]}, tenant=False)
    # Dates as in the spec's example: local-less UTC with seven fraction digits.
    answer = identity_spec["paths"]["/Connections"]["get"]["responses"]["200"]["content"]["application/json"]
    example = json.loads(answer["example"])[0]["createdDateUtc"]
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")
    assert pattern.match(example)
    assert all(
        pattern.match(row["createdDateUtc"]) and pattern.match(row["updatedDateUtc"]) for row in listed
    )
    identity_calls("DELETE", f"/Connections/{listed[0]['id']}", expect=204, tenant=False)
    identity_calls("DELETE", f"/Connections/{listed[0]['id']}", expect=404, tenant=False)


def test_token_responses_match_the_access_token_schema(client, identity_spec, xero_app, xero_orgs):
    schema = identity_spec["components"]["schemas"]["AccessToken"]
    validator = OAS30Validator({**schema, "additionalProperties": True})
    query = authorize(client, xero_app, xero_orgs[:1])
    first = token_request(
        client, xero_app, grant_type="authorization_code", code=query["code"], redirect_uri=REDIRECT_URI
    ).json()
    validator.validate(first)
    refreshed = token_request(
        client, xero_app, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    validator.validate(refreshed.json())
    # Every documented field is present, not only allowed.
    assert set(schema["properties"]) <= set(first)
