"""The sync pair's settings form against the sandbox's Pipedrive (live server): every option a field with
help text, saved through PairOptions, refused with a reason when wrong, and bad stored options reported
on the pair's page instead of crashing it."""

import pytest
from django.contrib import admin
from django.urls import include, path

from connector.connections import services as connections
from connector.models import ConnectionStatus, SyncPair, XeroConnection
from connector.options import PairOptions, option_names, pair_options
from connector.setup.pair_settings import title_template_problem

urlpatterns = [
    path("admin/", include("connector.operations.urls")),  # the health page and the home's summary
    path("connect/", include("connector.connections.urls")),  # the home's set-up call-out links there
    path("admin/", admin.site.urls),
    path("webhooks/", include("connector.intake.urls")),
    path("pipedrive/panel/", include("connector.panel.urls")),  # the pair page shows its endpoint
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def settings_pair(sandbox_urls):
    """A pair whose Pipedrive side is the sandbox's demo company, with a number, an amount and a text
    organization field (the Xero side is never called by the settings page)."""
    from django.core.cache import cache

    from sandbox.pipedrive import services as pd

    cache.clear()
    company = pd.ensure_demo_company()
    fields = {
        name: pd.create_field(company, "organization", {"field_name": name, "field_type": kind})
        for name, kind in [("Credit limit", "monetary"), ("Limit (number)", "double"), ("Notes", "varchar")]
    }
    pipedrive = connections.connect_pipedrive_api_token(
        pd.DEMO_API_TOKEN, api_domain=f"{sandbox_urls}/pipedrive"
    )
    xero = XeroConnection.objects.create(
        tenant_id="tenant-s", tenant_name="Settings Org", client_id="c", status=ConnectionStatus.ACTIVE
    )
    pair = SyncPair.objects.create(name="Settings pair", xero_connection=xero, pipedrive_connection=pipedrive)
    return pair, {name: f.field_code for name, f in fields.items()}


def change_url(pair):
    return f"/admin/connector/syncpair/{pair.pk}/change/"


def form(pair, **values):
    data = {
        "name": pair.name,
        "xero_connection": pair.xero_connection_id,
        "pipedrive_connection": pair.pipedrive_connection_id,
        "enabled": "on",
        "deal_value_from": "AmountDue",
        "deal_title_template": "{InvoiceNumber} for {Contact.Name} ({CurrencyCode} {Total})",
        "create_deals": "on",
        "archived_contacts": "clear",
        "credit_limit_field": "",
        "on_pipedrive_delete": "drop",
        "webhook_silence_alert_hours": "6",
        "reconciliation_interval_minutes": "30",
        "reconciliation_only": "on",
        "overdue_check_at": "07:30",
        "overdue_reminders": "on",
        "xero_webhook_key": "",
        "pipedrive_signing_secret": "",
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not None}


def test_every_option_is_a_field_with_help_text(admin_client, settings_pair):
    pair, codes = settings_pair
    answer = admin_client.get(change_url(pair))
    assert answer.status_code == 200
    fields = answer.context["adminform"].form.fields
    for name in option_names():
        assert name in fields and (fields[name].help_text or fields[name].label), name
    assert "options" not in fields  # no JSON box any more
    html = answer.content.decode()
    assert "{Contact.Name} (the customer's name)" in html  # the placeholders are listed
    credit = dict(fields["credit_limit_field"].choices)
    # Only number and amount fields can hold a credit limit.
    assert credit[codes["Credit limit"]] == "Credit limit (monetary)"
    assert credit[codes["Limit (number)"]] == "Limit (number) (double)"
    assert codes["Notes"] not in credit and "" in credit
    assert "No problems: every stored setting is valid." in html


def test_each_field_is_saved_through_the_options_object(admin_client, settings_pair):
    pair, codes = settings_pair
    saved = admin_client.post(change_url(pair), form(pair, credit_limit_field=codes["Credit limit"]))
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    pair.refresh_from_db()
    assert pair.options == {
        "deal_value_from": "AmountDue",
        "deal_title_template": "{InvoiceNumber} for {Contact.Name} ({CurrencyCode} {Total})",
        "create_deals": True,
        "create_notes": False,
        "archived_contacts": "clear",
        "credit_limit_field": codes["Credit limit"],
        "on_pipedrive_delete": "drop",
        "webhook_silence_alert_hours": 6,
        "reconciliation_interval_minutes": 30,
        "reconciliation_only": True,
        "overdue_check_at": "07:30",
        "overdue_reminders": True,
    }
    assert pair_options(pair).problems == ()
    page = admin_client.get(change_url(pair)).context["adminform"].form
    assert page["deal_value_from"].value() == "AmountDue" and page["create_notes"].value() is False


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"deal_title_template": "{InvoiceNumber} · {Nope}"}, "deal_title_template", "{Nope} is not a field"),
        ({"deal_title_template": "{InvoiceNumber"}, "deal_title_template", "braces do not pair up"),
        ({"deal_value_from": "SubTotal"}, "deal_value_from", "Select a valid choice"),
        (
            {"reconciliation_interval_minutes": "5000"},
            "reconciliation_interval_minutes",
            "less than or equal",
        ),
        ({"webhook_silence_alert_hours": "-1"}, "webhook_silence_alert_hours", "greater than or equal to 0"),
        ({"credit_limit_field": "f" * 40}, "credit_limit_field", "Select a valid choice"),
    ],
)
def test_bad_values_are_refused_with_the_reason_and_nothing_changes(
    admin_client, settings_pair, values, field, message
):
    pair, _ = settings_pair
    before = dict(pair.options)
    answer = admin_client.post(change_url(pair), form(pair, **values))
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert field in errors and any(message in text for text in errors[field]), errors
    pair.refresh_from_db()
    assert pair.options == before


def test_a_text_field_cannot_hold_the_credit_limit(admin_client, settings_pair):
    from connector.setup.pair_settings import PairSettingsForm

    pair, codes = settings_pair

    class Form(PairSettingsForm):
        class Meta:
            model = SyncPair
            fields = ["name"]

    Form.credit_fields = [{"key": codes["Notes"], "name": "Notes", "field_type": "varchar"}]
    bound = Form(form(pair, credit_limit_field=codes["Notes"]), instance=pair)
    bound.fields["credit_limit_field"].choices += [(codes["Notes"], "Notes")]
    assert not bound.is_valid()
    assert "a credit limit needs a number or amount field" in bound.errors["credit_limit_field"][0]


def test_bad_stored_options_are_reported_on_the_page_not_crashed_on(admin_client, settings_pair):
    pair, _ = settings_pair
    SyncPair.objects.filter(pk=pair.pk).update(
        options={"deal_value_from": "Subtotal", "reconciliation_interval_minutes": "often", "colour": "blue"}
    )
    answer = admin_client.get(change_url(pair))
    assert answer.status_code == 200
    html = answer.content.decode()
    warnings = [str(m) for m in answer.context["messages"]]
    assert any("deal_value_from" in w and "colour" in w for w in warnings), warnings
    assert "reconciliation_interval_minutes" in html and "(the defaults are used)" in html
    assert answer.context["adminform"].form["deal_value_from"].value() == "Total"  # the default shown
    # Saving the page stores valid options again.
    admin_client.post(change_url(pair), form(pair))
    pair.refresh_from_db()
    assert pair_options(pair).problems == () and "colour" not in pair.options


def test_a_post_without_the_settings_keeps_the_stored_options(admin_client, settings_pair):
    pair, _ = settings_pair
    SyncPair.objects.filter(pk=pair.pk).update(options={"create_notes": False, "archived_contacts": "leave"})
    answer = admin_client.post(
        change_url(pair),
        {
            "name": "Renamed",
            "xero_connection": pair.xero_connection_id,
            "pipedrive_connection": pair.pipedrive_connection_id,
            "enabled": "on",
        },
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    pair.refresh_from_db()
    assert pair.name == "Renamed" and pair.options == {"create_notes": False, "archived_contacts": "leave"}


def test_title_template_problems():
    assert title_template_problem("{InvoiceNumber} · {Contact.Name}") is None
    assert title_template_problem("Invoice {Reference} due {DueDate}") is None
    assert "is not a field of a Xero invoice" in title_template_problem("{Customer}")
    assert "empty" in title_template_problem("Deal {}")
    assert PairOptions.from_raw({"deal_title_template": "{InvoiceNumber}"}).problems == ()


@pytest.mark.parametrize("bad", ["7", "24:00", "06:60", "6.30", "noon", "06:00:00"])
def test_a_bad_overdue_check_time_is_a_clear_error_and_nothing_is_saved(admin_client, settings_pair, bad):
    pair, _codes = settings_pair
    before = dict(pair.options)
    answer = admin_client.post(change_url(pair), form(pair, overdue_check_at=bad))
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert "HH:MM" in " ".join(errors["overdue_check_at"]), errors
    pair.refresh_from_db()
    assert pair.options == before  # nothing half-written: not even the other (valid) fields


def test_an_empty_overdue_check_time_keeps_the_one_in_force(admin_client, settings_pair):
    pair, _codes = settings_pair
    saved = admin_client.post(change_url(pair), form(pair, overdue_check_at=""))
    assert saved.status_code == 302
    pair.refresh_from_db()
    assert pair_options(pair).overdue_check_at == "06:00"
