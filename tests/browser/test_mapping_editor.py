"""The mapping editor and the pair settings page in Chromium (1280x800), against the sandbox: the pick-lists
fill as the pair and target are chosen, a wrong combination is explained before saving, the preview shows
the row's value, a lookup into an option field picks its options, and the saved rows hold what was picked.
Screenshots: test-artifacts/screenshots/mapping-editor-*.png, each checked to fit without sideways scrolling.
"""

import pytest
from django.contrib import admin
from django.urls import include, path

from mapping.models import FieldMapping
from tests.mapping import conftest as mapping_fixtures

# The sandbox world of the mapping tests: a pair, a contact with a part-paid invoice, the demo company.
world = mapping_fixtures.world
mapping_defaults = mapping_fixtures.mapping_defaults

urlpatterns = [
    path("admin/", include("connector.operations.urls")),  # the health page and the home's summary
    path("admin/", admin.site.urls),
    path("connect/", include("connector.connections.urls")),
    path("webhooks/", include("connector.intake.urls")),
    path("pipedrive/panel/", include("connector.panel.urls")),  # the pair page shows its endpoint
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(page, live_server, admin_client):
    """The browser carries the test admin's session."""
    session = admin_client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    return page


@pytest.fixture
def custom(world):
    """A text field for the website and an option field "Tier" in the sandbox's Pipedrive company."""
    from django.core.cache import cache

    from sandbox.pipedrive import services as pd

    company = world["company"]
    web = pd.create_field(company, "organization", {"field_name": "Web address", "field_type": "varchar"})
    tier = pd.create_field(
        company,
        "organization",
        {"field_name": "Tier", "field_type": "enum", "options": [{"label": "Gold"}, {"label": "Silver"}]},
    )
    cache.clear()
    return {"web": web.field_code, "tier": tier.field_code}


def test_a_rule_is_picked_checked_previewed_and_saved_in_the_browser(
    signed_in, live_server, world, custom, screenshot
):
    page, pair = signed_in, world["pair"]
    page.goto(f"{live_server.url}/admin/mapping/fieldmapping/add/")
    page.select_option("#id_pair", str(pair.pk))
    page.select_option("#id_target", "organization")
    # The lists fill from the pick-list endpoint: no saving first.
    page.wait_for_selector("#id_source_path option[value='Addresses[STREET].City']", state="attached")
    page.fill("#id_source_path_filter", "street")
    assert page.locator("#id_source_path option[value='Phones[MOBILE].PhoneNumber']").is_hidden()
    page.select_option("#id_source_path", "Addresses[STREET].City")
    page.select_option("#id_pipedrive_field", label="Web address (varchar)")
    page.wait_for_selector("#mapping-check.ok")
    assert "Address (street) → City → Web address (text)" in page.inner_text("#mapping-check")
    screenshot(page, "mapping-editor-picked")

    page.select_option("#id_transform", "money")
    page.wait_for_selector("#mapping-check.problems")
    assert "type 'varchar'" in page.inner_text("#mapping-check")
    assert page.locator(".form-row.field-currency").is_visible()
    assert page.locator(".form-row.field-table").is_hidden()
    screenshot(page, "mapping-editor-problem")
    page.select_option("#id_transform", "text")
    page.wait_for_selector("#mapping-check.ok")

    page.click("#preview-list")
    page.wait_for_selector(f"#preview-record option[value='{world['contact_id']}']", state="attached")
    page.select_option("#preview-record", world["contact_id"])
    page.click("#preview-run")
    page.wait_for_function(
        "document.getElementById('mapping-preview-result').textContent.includes('Auckland')"
    )
    assert page.inner_text("#mapping-preview-result") == 'Te Whare Kōrero Ltd → "Auckland"'
    screenshot(page, "mapping-editor-preview")

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/mapping/fieldmapping/")
    rule = FieldMapping.objects.get(pair=pair, pipedrive_field=custom["web"])
    assert (rule.source_path, rule.transform, rule.transform_options) == (
        "Addresses[STREET].City",
        "text",
        {"field_type": "varchar"},
    )
    screenshot(page, "mapping-editor-list")


def test_a_lookup_into_an_option_field_picks_the_options(signed_in, live_server, world, custom, screenshot):
    page, pair = signed_in, world["pair"]
    page.goto(f"{live_server.url}/admin/mapping/fieldmapping/add/?pair={pair.pk}&target=organization")
    page.select_option("#id_source_path", "ContactGroups[0].Name")
    page.select_option("#id_transform", "lookup")
    page.select_option("#id_pipedrive_field", label="Tier (enum)")
    rows = page.locator(".lookup-table tbody tr")
    rows.nth(0).locator("[name=table_from]").fill("Wholesale")
    rows.nth(0).locator("select[name=table_to]").select_option(label="Gold")
    page.click(".add-lookup-row")
    assert rows.count() == 4
    rows.nth(1).locator("[name=table_from]").fill("Retail")
    rows.nth(1).locator("select[name=table_to]").select_option(label="Silver")
    page.wait_for_selector("#mapping-check.ok")
    screenshot(page, "mapping-editor-lookup")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/mapping/fieldmapping/")
    rule = FieldMapping.objects.get(pair=pair, pipedrive_field=custom["tier"])
    assert rule.transform_options == {"table": {"Wholesale": 1, "Retail": 2}, "field_type": "enum"}


def test_the_pair_settings_page_fits_and_saves(signed_in, live_server, world, screenshot):
    page, pair = signed_in, world["pair"]
    page.goto(f"{live_server.url}/admin/connector/syncpair/{pair.pk}/change/")
    page.select_option("#id_deal_value_from", "AmountDue")
    page.fill("#id_deal_title_template", "{InvoiceNumber} · {Contact.Name} · {Nope}")
    screenshot(page, "mapping-editor-pair-settings")
    page.click("input[name=_continue]")
    assert "{Nope} is not a field of a Xero invoice" in page.inner_text(".field-deal_title_template")
    screenshot(page, "mapping-editor-pair-settings-refused")
    page.fill("#id_deal_title_template", "{InvoiceNumber} · {Contact.Name}")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    pair.refresh_from_db()
    assert pair.options["deal_value_from"] == "AmountDue"
