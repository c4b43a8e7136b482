"""The mapping admin against the sandbox (live server): invalid rows refused with their reason, edits
reaching the next payload, the preview writing nothing, recommended fields and the pipeline created once."""

import json

import pytest
from django.urls import include, path

from connector.models import PipedriveConnection, SyncPair
from mapping.engine import map_organization
from mapping.models import FieldMapping, StageMapping
from mapping.rules import field_rules
from sandbox import counters
from tests.conftest import SANDBOX_PUBLIC_BASE

urlpatterns = [
    path("admin/", __import__("django.contrib.admin", fromlist=["site"]).site.urls),
    path("connect/", include("connector.connections.urls")),
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

BASE = SANDBOX_PUBLIC_BASE  # the address sandbox_urls (tests/conftest.py) gives the installation
ADD_URL = "/admin/mapping/fieldmapping/add/"
SETUP_URL = "/admin/mapping/fieldmapping/setup/"


def pipedrive_writes(company) -> int:
    snapshot = counters.snapshot("pipedrive", str(company.id))
    return sum(
        count
        for endpoint, statuses in snapshot["by_endpoint"].items()
        if endpoint.split(" ")[0] in ("POST", "PATCH", "PUT", "DELETE")
        for count in statuses.values()
    )


def add_row(admin_client, pair, **values):
    data = {
        "pair": pair.pk if pair else "",
        "target": "organization",
        "source_path": "Name",
        "pipedrive_field": "website",
        "transform": "text",
        "transform_options": "{}",
        "enabled": "on",
        "order": "0",
        **values,
    }
    return admin_client.post(ADD_URL, data)


def custom_fields(company, entity):
    from sandbox.pipedrive.models import CustomField

    return {f.field_name: f for f in CustomField.objects.filter(company=company, entity=entity)}


def test_recommended_fields_are_created_once(admin_client, world):
    pair, company = world["pair"], world["company"]
    answer = admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "recommended_fields"}, follow=True)
    assert answer.status_code == 200
    assert b"Created 12 field(s)" in answer.content
    org_fields, deal_fields = custom_fields(company, "organization"), custom_fields(company, "deal")
    assert set(org_fields) == {
        "Xero ContactID",
        "Xero outstanding",
        "Xero overdue",
        "Available credit",
        "Over credit limit",
        "Xero link",
    }
    assert (
        org_fields["Xero overdue"].field_type == "monetary"
        and deal_fields["Xero due date"].field_type == "date"
    )
    rows = {(r.target, r.pipedrive_field): r for r in FieldMapping.objects.filter(pair=pair)}
    # The defaults were copied first, then a rule per new field.
    assert ("organization", "address") in rows and ("deal", "expected_close_date") in rows
    overdue = rows[("organization", org_fields["Xero overdue"].field_code)]
    assert overdue.source_path == "Balances.AccountsReceivable.Overdue" and overdue.transform == "money"
    assert (
        overdue.transform_options == {"field_type": "monetary"}
        and overdue.pipedrive_field_name == "Xero overdue"
    )
    count = FieldMapping.objects.filter(pair=pair).count()
    writes = pipedrive_writes(company)

    again = admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "recommended_fields"}, follow=True)
    assert b"Every recommended field already exists" in again.content
    assert len(custom_fields(company, "organization")) == 6 and len(custom_fields(company, "deal")) == 6
    assert FieldMapping.objects.filter(pair=pair).count() == count
    assert pipedrive_writes(company) == writes


def test_invoice_pipeline_is_created_once_and_stage_rows_point_at_it(admin_client, world):
    from sandbox.pipedrive.models import Pipeline

    pair, company = world["pair"], world["company"]
    admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "invoice_pipeline"})
    pipeline = Pipeline.objects.get(company=company, name="Xero invoices")
    stages = {s.name: s.id for s in pipeline.stages.all()}
    assert list(stages) == [
        "Draft",
        "Awaiting approval",
        "Awaiting payment",
        "Overdue",
        "Part paid",
        "Paid",
        "Voided",
    ]
    rows = {(r.kind, r.xero_value): r for r in StageMapping.objects.filter(pair=pair)}
    defaults = StageMapping.objects.filter(pair=None).count()  # 9 with the Overdue rule's migration run
    assert len(rows) == defaults >= 8
    assert rows[("payment_state", "PART_PAID")].stage_id == stages["Part paid"]
    assert rows[("invoice_status", "DELETED")].stage_id == stages["Voided"]
    assert rows[("invoice_status", "PAID")].deal_status == "won"
    assert {r.pipeline_id for r in rows.values()} == {pipeline.id}

    admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "invoice_pipeline"})
    assert Pipeline.objects.filter(company=company, name="Xero invoices").count() == 1
    assert pipeline.stages.count() == 7 and StageMapping.objects.filter(pair=pair).count() == defaults


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"source_path": "Nmae"}, "source_path", "Unknown Xero source path &#x27;Nmae&#x27;"),
        ({"source_path": "Addresses[STREET].Town"}, "source_path", "Addresses[STREET].Town"),
        ({"pipedrive_field": "f" * 40}, "pipedrive_field", "does not exist in this Pipedrive company"),
        ({"transform": "money"}, "pipedrive_field", "type &#x27;varchar&#x27;"),
        ({"pipedrive_field": "owner_id"}, "pipedrive_field", "type &#x27;user&#x27;"),
        ({"transform": "lookup"}, "table", "A lookup needs at least one row"),
        ({"transform": "join", "sources": ["Name", "Bogus"]}, "sources", "Bogus"),
        (
            {"transform": "money", "pipedrive_field": "name", "currency": "dollars"},
            "currency",
            "3 characters",
        ),
    ],
)
def test_invalid_rows_are_refused_with_their_reason(admin_client, world, values, field, message):
    answer = add_row(admin_client, world["pair"], **values)
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert field in errors, errors
    assert message in answer.content.decode()
    assert not FieldMapping.objects.filter(pair=world["pair"]).exists()


def test_default_rows_may_only_target_standard_fields(admin_client, world):
    answer = add_row(admin_client, None, pipedrive_field="a" * 40)
    assert answer.status_code == 200 and b"may only target standard organization fields" in answer.content
    assert add_row(admin_client, None, source_path="ContactNumber").status_code == 302


def test_the_pipedrive_field_is_chosen_from_the_live_list_and_a_type_mismatch_is_refused(admin_client, world):
    pair, company = world["pair"], world["company"]
    admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "recommended_fields"})
    overdue = custom_fields(company, "organization")["Xero overdue"]
    page = admin_client.get(f"{ADD_URL}?pair={pair.pk}&target=organization")
    assert f'<option value="{overdue.field_code}">Xero overdue (monetary)</option>' in page.content.decode()
    refused = add_row(
        admin_client, pair, source_path="Name", pipedrive_field=overdue.field_code, transform="date"
    )
    assert (
        "&#x27;Xero overdue&#x27;" in refused.content.decode()
        and "type &#x27;monetary&#x27;" in refused.content.decode()
    )


def test_editing_a_row_in_the_admin_changes_the_next_payload(admin_client, world):
    pair, company = world["pair"], world["company"]
    admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "recommended_fields"})
    code = custom_fields(company, "organization")["Xero ContactID"].field_code
    row = FieldMapping.objects.get(pair=pair, pipedrive_field=code)
    contact = {"ContactID": "c-1", "ContactNumber": "C-77", "Name": "Acme"}
    assert (
        map_organization(contact, field_rules(pair, "organization")).payload["custom_fields"][code] == "c-1"
    )

    changed = admin_client.post(
        f"/admin/mapping/fieldmapping/{row.pk}/change/",
        {
            "pair": pair.pk,
            "target": "organization",
            "source_path": "ContactNumber",
            "pipedrive_field": code,
            "transform": "text",
            "transform_options": "{}",
            "enabled": "on",
            "order": row.order,
        },
    )
    assert changed.status_code == 302, changed.context["adminform"].form.errors
    assert (
        map_organization(contact, field_rules(pair, "organization")).payload["custom_fields"][code] == "C-77"
    )
    row.refresh_from_db()
    assert row.transform_options == {"field_type": "varchar"} and row.pipedrive_field_name == "Xero ContactID"


def test_preview_shows_payloads_and_writes_nothing_to_pipedrive(admin_client, world):
    pair, company = world["pair"], world["company"]
    listed = admin_client.get(SETUP_URL, {"pair": pair.pk, "list_contacts": "1"})
    assert "Te Whare Kōrero Ltd" in listed.content.decode()
    writes = pipedrive_writes(company)

    page = admin_client.get(
        SETUP_URL, {"pair": pair.pk, "contact_id": world["contact_id"], "invoice_id": world["invoice_id"]}
    )
    assert page.status_code == 200
    rows = {row["title"].split(" (")[0]: row for row in page.context["preview"]}
    org = json.loads(rows["Organization"]["json"])
    assert org["name"] == "Te Whare Kōrero Ltd"
    assert org["address"]["value"] == "1 Queen St, Auckland 1010, New Zealand"
    assert json.loads(rows["Person aroha@whare.example"]["json"])["phones"][0]["value"] == "09 555 0100"
    assert json.loads(rows["Person bob@whare.example"]["json"])["name"] == "Bob Lee"
    deal = json.loads(rows["Deal"]["json"])
    assert deal["value"] > 0 and deal["currency"] == "NZD" and deal["expected_close_date"] == "2026-10-31"
    assert "payment state: PART_PAID" in rows["Deal"]["title"] and "Part paid" in rows["Deal"]["title"]
    assert "Te Whare K" in page.content.decode() and "Fields mapped" in page.content.decode()
    assert pipedrive_writes(company) == writes  # a preview writes nothing


def test_a_failing_pipedrive_call_is_a_form_error_not_a_500(admin_client, world):
    pair = world["pair"]
    PipedriveConnection.objects.filter(pk=pair.pipedrive_connection_id).update(
        api_token="revoked-elsewhere-000"
    )
    from django.core.cache import cache

    cache.clear()
    answer = add_row(admin_client, SyncPair.objects.get(pk=pair.pk), pipedrive_field="website")
    assert answer.status_code == 200
    assert "Could not read the organization fields of Pipedrive" in answer.content.decode()
    assert not FieldMapping.objects.filter(pair=pair).exists()
    preview = admin_client.get(
        SETUP_URL, {"pair": pair.pk, "contact_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert preview.status_code == 200 and "Xero could not give that record" in preview.content.decode()


def test_stage_mapping_picks_pipeline_and_stage_from_the_live_list(admin_client, world):
    from sandbox.pipedrive.models import Stage

    pair, company = world["pair"], world["company"]
    paid = Stage.objects.get(pipeline__company=company, name="Paid")
    page = admin_client.get(f"/admin/mapping/stagemapping/add/?pair={pair.pk}")
    assert f'<option value="{paid.pipeline_id}:{paid.id}">Sales / Paid</option>' in page.content.decode()
    form = {
        "pair": pair.pk,
        "kind": "payment_state",
        "xero_value": "paid",
        "live_stage": f"{paid.pipeline_id}:{paid.id}",
        "pipeline_id": "",
        "pipeline_name": "",
        "stage_id": "",
        "stage_name": "",
        "deal_status": "won",
        "lost_reason": "",
        "enabled": "on",
    }
    saved = admin_client.post("/admin/mapping/stagemapping/add/", form)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    row = StageMapping.objects.get(pair=pair)
    assert (row.xero_value, row.pipeline_id, row.pipeline_name, row.stage_id, row.stage_name) == (
        "PAID",
        paid.pipeline_id,
        "Sales",
        paid.id,
        "Paid",
    )
    refused = admin_client.post("/admin/mapping/stagemapping/add/", {**form, "xero_value": "OVERDUE"})
    assert refused.status_code == 200 and "is not a payment state value" in refused.content.decode()


def test_credit_limits_are_listed_and_editable_in_the_list(admin_client, world):
    from mapping.models import CreditLimit

    row = CreditLimit.objects.create(
        pair=world["pair"], contact_group="Wholesale", amount=1000, currency="NZD"
    )
    page = admin_client.get("/admin/mapping/creditlimit/")
    assert page.status_code == 200 and "group Wholesale" in page.content.decode()
    changed = admin_client.post(
        "/admin/mapping/creditlimit/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": row.pk,
            "form-0-amount": "2500.00",
            "form-0-currency": "NZD",
            "_save": "Save",
        },
    )
    assert changed.status_code == 302
    row.refresh_from_db()
    assert row.amount == 2500


def test_preview_action_on_field_mappings_opens_the_pairs_preview(admin_client, world):
    pair = world["pair"]
    row = FieldMapping.objects.create(
        pair=pair, target="organization", source_path="Name", pipedrive_field="name"
    )
    answer = admin_client.post(
        "/admin/mapping/fieldmapping/", {"action": "preview_mapping", "_selected_action": [row.pk]}
    )
    assert answer.status_code == 302 and answer["Location"] == f"{SETUP_URL}?pair={pair.pk}"
    assert b"Pipedrive setup and preview" in admin_client.get("/admin/mapping/fieldmapping/").content


def test_the_live_field_list_is_cached_between_admin_pages(admin_client, world):
    pair, company = world["pair"], world["company"]
    from django.core.cache import cache

    cache.clear()
    before = counters.calls_to("pipedrive", "GET /api/v2/organizationFields", tenant=str(company.id))
    for _ in range(3):
        assert admin_client.get(f"{ADD_URL}?pair={pair.pk}&target=organization").status_code == 200
    after = counters.calls_to("pipedrive", "GET /api/v2/organizationFields", tenant=str(company.id))
    assert after - before == 1


def test_an_existing_field_of_the_same_name_is_reused_and_a_wrong_typed_one_is_not_mapped(
    admin_client, world
):
    from sandbox.pipedrive import services as pd

    pair, company = world["pair"], world["company"]
    link = pd.create_field(company, "organization", {"field_name": "xero link", "field_type": "varchar"})
    wrong = pd.create_field(company, "organization", {"field_name": "Xero overdue", "field_type": "varchar"})
    admin_client.post(SETUP_URL, {"pair": pair.pk, "action": "recommended_fields"})
    fields = custom_fields(company, "organization")
    assert len(fields) == 6 and fields["xero link"].field_code == link.field_code
    mapped = set(
        FieldMapping.objects.filter(pair=pair, target="organization").values_list(
            "pipedrive_field", flat=True
        )
    )
    assert link.field_code in mapped and wrong.field_code not in mapped


@pytest.mark.parametrize("field", ["contact_id", "invoice_id"])
def test_a_preview_id_that_is_not_a_xero_guid_is_refused_before_any_call(admin_client, world, field):
    from sandbox import counters

    pair = world["pair"]
    counters.reset()
    page = admin_client.get(SETUP_URL, {"pair": pair.pk, field: "../Invoices?where=1"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "is not a Xero" in text and not page.context.get("preview")
    tenant = str(pair.xero_connection.tenant_id)
    assert counters.snapshot("xero", tenant)["calls"] == 0  # nothing was sent to Xero
