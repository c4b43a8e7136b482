"""The mapping editor against the sandbox (live server): labelled pick-lists, transform options as form
fields producing the stored options, invalid combinations explained before saving, the one-row preview,
and an edited row reaching the next sync's Pipedrive write."""

import pytest

from connector.sync.contacts import sync_contacts
from mapping.models import FieldMapping
from tests.mapping.test_admin_sandbox import ADD_URL, SETUP_URL, custom_fields, pipedrive_writes
from tests.mapping.test_admin_sandbox import urlpatterns as urlpatterns  # the admin and the sandbox

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

CHOICES_URL = "/admin/mapping/fieldmapping/choices/"
CHECK_URL = "/admin/mapping/fieldmapping/check/"
RECORDS_URL = "/admin/mapping/fieldmapping/records/"


def row(pair, **values):
    """The editor's form as a browser posts it (empty option fields included)."""
    return {
        "pair": pair.pk if pair else "",
        "target": "organization",
        "source_path": "Name",
        "other_source_path": "",
        "pipedrive_field": "website",
        "transform": "text",
        "separator": ", ",
        "default": "",
        "max_length": "",
        "decimals": "",
        "currency": "",
        "currency_path": "",
        "enabled": "on",
        "order": "0",
        **values,
    }


@pytest.fixture
def fields(admin_client, world):
    """The recommended custom fields, plus a text field for the website and a "Tier" option field."""
    from sandbox.pipedrive import services as pd

    company = world["company"]
    admin_client.post(SETUP_URL, {"pair": world["pair"].pk, "action": "recommended_fields"})
    pd.create_field(company, "organization", {"field_name": "Web address", "field_type": "varchar"})
    pd.create_field(
        company,
        "organization",
        {"field_name": "Tier", "field_type": "enum", "options": [{"label": "Gold"}, {"label": "Silver"}]},
    )
    from django.core.cache import cache

    cache.clear()  # the field list was cached before the two new fields
    return custom_fields(company, "organization")


def test_the_add_page_offers_labelled_xero_fields_and_live_pipedrive_fields_with_types(
    admin_client, world, fields
):
    pair = world["pair"]
    html = admin_client.get(f"{ADD_URL}?pair={pair.pk}&target=organization").content.decode()
    for path, label in [
        ("Addresses[STREET].City", "Address (street) → City"),
        ("Phones[MOBILE].PhoneNumber", "Phone (mobile) → Number"),
        ("Balances.AccountsReceivable.Outstanding", "Balances → Outstanding receivables"),
        ("Connector.CreditLimit", "Credit limit (kept by the connector)"),
        ("Website", "Website"),
    ]:
        assert f'<option value="{path}">{label}</option>' in html, path
    assert '<optgroup label="Address">' in html and '<optgroup label="Computed by the connector">' in html
    assert 'class="mapping-filter"' in html  # the filter box of the pick-list
    custom = html.split('<optgroup label="Custom fields">')[1].split("</optgroup>")[0]
    assert f'<option value="{fields["Xero overdue"].field_code}">Xero overdue (monetary)</option>' in custom
    assert f'<option value="{fields["Tier"].field_code}">Tier (enum)</option>' in custom
    standard = html.split('<optgroup label="Standard fields">')[1].split("</optgroup>")[0]
    assert '<option value="website">' in standard


def test_the_choices_endpoint_fills_the_lists_for_another_target_without_saving(admin_client, world, fields):
    pair = world["pair"]
    data = admin_client.get(CHOICES_URL, {"pair": pair.pk, "target": "deal"}).json()
    groups = {g["group"]: dict(g["options"]) for g in data["sources"]}
    assert groups["Invoice"]["DueDate"] == "Due date"
    assert groups["Customer (on the invoice)"]["Contact.Name"] == "Customer → Name"
    live = {f["name"]: f["field_type"] for f in data["fields"]}
    assert live["Xero due date"] == "date" and live["Xero amount due"] == "monetary"
    assert data["error"] is None and "monetary" in data["compatible"]["money"]
    defaults = admin_client.get(CHOICES_URL, {"target": "person"}).json()
    assert {f["key"] for f in defaults["fields"]} == {"name", "emails", "phones", "job_title"}
    assert admin_client.get(CHOICES_URL, {"target": "invoice"}).status_code == 400


def test_a_lookup_table_is_stored_from_its_rows_with_option_ids(admin_client, world, fields):
    pair, tier = world["pair"], fields["Tier"]
    saved = admin_client.post(
        ADD_URL,
        row(
            pair,
            source_path="ContactGroups[0].Name",
            pipedrive_field=tier.field_code,
            transform="lookup",
            table_from=["Wholesale", "Retail", ""],
            table_to=["Gold", "2", ""],
            default="Silver",
        ),
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    rule = FieldMapping.objects.get(pair=pair, pipedrive_field=tier.field_code)
    # Option labels are stored as the option ids Pipedrive expects; the default too.
    assert rule.transform_options == {
        "table": {"Wholesale": 1, "Retail": 2},
        "default": 2,
        "field_type": "enum",
    }
    page = admin_client.get(f"/admin/mapping/fieldmapping/{rule.pk}/change/").content.decode()
    assert (
        'name="table_from" value="Wholesale"' in page and '<option value="1" selected>Gold</option>' in page
    )

    refused = admin_client.post(
        ADD_URL,
        row(
            pair, pipedrive_field=tier.field_code, transform="lookup", table_from=["VIP"], table_to=["Bronze"]
        ),
    )
    assert refused.status_code == 200
    assert (
        "&#x27;Bronze&#x27; is not an option of the Pipedrive field &#x27;Tier&#x27;"
        in refused.content.decode()
    )


def test_join_sources_are_stored_in_order_and_fill_the_field(admin_client, world, fields):
    pair, web = world["pair"], fields["Web address"]
    saved = admin_client.post(
        ADD_URL,
        row(
            pair,
            source_path="",
            pipedrive_field=web.field_code,
            transform="join",
            sources=["Addresses[STREET].City", "Addresses[STREET].Country", ""],
            separator=" / ",
            max_length="40",
            clear_when_empty="on",
            currency="NZD",  # another transform's option: not stored
        ),
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    rule = FieldMapping.objects.get(pair=pair, pipedrive_field=web.field_code)
    assert rule.source_path == "Addresses[STREET].City"  # the first source when none is picked
    assert rule.transform_options == {
        "sources": ["Addresses[STREET].City", "Addresses[STREET].Country"],
        "separator": " / ",
        "max_length": 40,
        "clear_when_empty": True,
        "field_type": "varchar",
    }
    page = admin_client.get(f"/admin/mapping/fieldmapping/{rule.pk}/change/").content.decode()
    assert page.count('<option value="Addresses[STREET].Country" selected>') == 1


@pytest.mark.parametrize(
    ("values", "label", "message"),
    [
        ({"transform": "money"}, "Pipedrive field", "type 'varchar'"),
        ({"transform": "lookup"}, "Lookup table", "A lookup needs at least one row"),
        ({"other_source_path": "Addresses[STREET].Town"}, "Or type a Xero path", "Addresses[STREET].Town"),
        ({"transform": "join", "sources": ["Name", "Nmae"]}, "Xero fields to combine", "'Nmae'"),
        ({"transform": "number", "decimals": "12"}, "Decimals", "less than or equal to 10"),
        ({"source_path": ""}, "Xero field", "Choose the Xero field to read."),
    ],
)
def test_invalid_combinations_are_explained_before_saving(admin_client, world, values, label, message):
    answer = admin_client.post(CHECK_URL, row(world["pair"], **values)).json()
    assert answer["ok"] is False
    assert any(message in text for text in answer["errors"].get(label, [])), answer
    assert not FieldMapping.objects.filter(pair=world["pair"]).exists()


def test_a_valid_row_is_summed_up_in_plain_words(admin_client, world):
    answer = admin_client.post(CHECK_URL, row(world["pair"], source_path="Addresses[STREET].City")).json()
    assert answer == {"ok": True, "summary": "Address (street) → City → Website (text)"}
    assert not FieldMapping.objects.exists() or not FieldMapping.objects.filter(pair=world["pair"]).exists()


def test_the_preview_shows_the_rows_value_for_a_xero_record_and_writes_nothing(admin_client, world, fields):
    pair, company = world["pair"], world["company"]
    records = admin_client.get(RECORDS_URL, {"pair": pair.pk, "target": "organization"}).json()
    assert {"id": world["contact_id"], "name": "Te Whare Kōrero Ltd"} in records["records"]
    invoices = admin_client.get(RECORDS_URL, {"pair": pair.pk, "target": "deal"}).json()
    assert [r["id"] for r in invoices["records"]] == [world["invoice_id"]]
    writes = pipedrive_writes(company)

    web = fields["Web address"]
    answer = admin_client.post(
        CHECK_URL,
        row(
            pair,
            pipedrive_field=web.field_code,
            transform="join",
            sources=["Addresses[STREET].City", "Phones[DEFAULT].PhoneNumber"],
            separator=" | ",
            record_id=world["contact_id"],
        ),
    ).json()
    assert answer["ok"] and answer["preview"]["record"] == "Te Whare Kōrero Ltd"
    assert answer["preview"]["value"] == "Auckland | 555 0100"
    deal = admin_client.post(
        CHECK_URL,
        row(
            pair,
            target="deal",
            source_path="DueDate",
            pipedrive_field=custom_fields(company, "deal")["Xero due date"].field_code,
            transform="date",
            record_id=world["invoice_id"],
        ),
    ).json()
    assert deal["preview"]["value"] == "2026-10-31" and deal["preview"]["record"].startswith("Invoice ")
    empty = admin_client.post(
        CHECK_URL, row(pair, source_path="TaxNumber", record_id=world["contact_id"])
    ).json()
    assert empty["preview"]["text"] == "No value: the Pipedrive field is left as it is."
    bad_id = admin_client.post(CHECK_URL, row(pair, record_id="../Contacts?x=1")).json()
    assert "is not a Xero ContactID" in bad_id["preview_error"]
    assert pipedrive_writes(company) == writes  # the preview wrote nothing
    assert not FieldMapping.objects.filter(pair=pair, pipedrive_field=web.field_code).exists()


def test_the_editor_page_carries_the_preview_and_the_transform_options(admin_client, world):
    html = admin_client.get(f"{ADD_URL}?pair={world['pair'].pk}&target=organization").content.decode()
    assert 'id="mapping-preview"' in html and 'id="mapping-check"' in html
    assert '<table class="lookup-table"' in html and 'class="source-list"' in html
    assert 'id="mapping-editor" type="application/json"' in html
    assert '<script src="http' not in html  # nothing loaded from the internet


def test_an_edited_row_changes_what_the_next_sync_writes(admin_client, world, fields):
    from sandbox.pipedrive.models import Organization

    pair, web = world["pair"], fields["Web address"]
    saved = admin_client.post(
        ADD_URL, row(pair, source_path="Addresses[STREET].City", pipedrive_field=web.field_code)
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    sync_contacts(pair, [world["contact_id"]], trigger="manual")
    org = Organization.objects.get(company=world["company"], name="Te Whare Kōrero Ltd")
    assert org.custom_fields[web.field_code] == "Auckland"

    rule = FieldMapping.objects.get(pair=pair, pipedrive_field=web.field_code)
    edited = admin_client.post(
        f"/admin/mapping/fieldmapping/{rule.pk}/change/",
        row(pair, other_source_path="Addresses[STREET].PostalCode", pipedrive_field=web.field_code),
    )
    assert edited.status_code == 302, edited.context["adminform"].form.errors
    sync_contacts(pair, [world["contact_id"]], trigger="manual")
    org.refresh_from_db()
    assert org.custom_fields[web.field_code] == "1010"


def test_stage_mappings_pick_the_xero_value_from_the_invoice_statuses(admin_client, world):
    html = admin_client.get(f"/admin/mapping/stagemapping/add/?pair={world['pair'].pk}").content.decode()
    statuses = html.split('<optgroup label="Invoice status">')[1].split("</optgroup>")[0]
    assert '<option value="AUTHORISED">Approved, awaiting payment</option>' in statuses
    states = html.split('<optgroup label="Payment state">')[1].split("</optgroup>")[0]
    assert '<option value="PART_PAID">Part paid</option>' in states
