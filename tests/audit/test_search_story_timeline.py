"""Finance looking into one customer: customers and invoices made in the sandbox's Xero, synced to its
Pipedrive, then found in the Sync records list by the customer's name, an e-mail, the invoice number
and the ids; the story page names each custom field, its Xero source and its mapping row; the
customer's timeline lists every sync of the contact, its invoices and payments."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from audit.models import SyncRecord
from audit.services import email_key
from connector.setup import pipedrive_fields as pipedrive_setup
from connector.sync import sync_records
from mapping.models import FieldMapping
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]
ORACLE_EMAIL = "Accounts@Oracle-Alpha.example"


@pytest.fixture
def personal_data(request, settings):
    """AUDIT_PERSONAL_DATA while the customers are synced: "masked" (the default) unless parametrized."""
    settings.AUDIT_PERSONAL_DATA = getattr(request, "param", "masked")
    return settings.AUDIT_PERSONAL_DATA


@pytest.fixture
def customers(personal_data, sync_pair, sandbox):
    """Two customers, each with an invoice; the first also with a contact person and a payment."""
    sandbox.add_pipeline("Xero invoices", STAGES)
    pipedrive_setup.create_recommended_fields(sync_pair)
    oracle = sandbox.create_contact(
        "Oracle Alpha Ltd",
        email=ORACLE_EMAIL,
        persons=[{"FirstName": "Olga", "LastName": "Alpha", "EmailAddress": "olga@oracle-alpha.example"}],
    )
    beta = sandbox.create_contact("Beta Borealis Ltd", email="hello@beta-borealis.example")
    oracle_invoice = sandbox.create_invoice(oracle, amount=1200)
    beta_invoice = sandbox.create_invoice(beta, amount=300)
    sync_records(sync_pair, "CONTACT", [oracle, beta])
    sync_records(sync_pair, "INVOICE", [oracle_invoice, beta_invoice])
    payment = sandbox.pay(oracle_invoice, 200)
    sync_records(sync_pair, "PAYMENT", [payment])
    return {
        "oracle": oracle,
        "beta": beta,
        "oracle_invoice": oracle_invoice,
        "beta_invoice": beta_invoice,
        "number": sandbox.xero_invoice(oracle_invoice).invoice_number,
        "beta_number": sandbox.xero_invoice(beta_invoice).invoice_number,
        "payment": payment,
    }


def found(client, term) -> set[tuple[str, str]]:
    page = client.get(reverse("admin:audit_syncrecord_changelist"), {"q": term})
    assert page.status_code == 200
    return {(r.xero_type, r.xero_id) for r in page.context["cl"].result_list}


@pytest.mark.parametrize("personal_data", ["masked", "full", "none"], indirect=True)
def test_the_list_finds_a_customer_by_name_and_invoice_number_under_every_setting(
    personal_data, client, finance_user, customers
):
    mode, c = personal_data, customers
    client.force_login(finance_user)

    oracle = found(client, "Oracle Alpha")
    assert ("contact", c["oracle"]) in oracle and ("invoice", c["oracle_invoice"]) in oracle
    assert ("payment", c["payment"]) in oracle
    assert not {x for x in oracle if x[1] in (c["beta"], c["beta_invoice"])}
    assert found(client, c["number"]) >= {("invoice", c["oracle_invoice"]), ("payment", c["payment"])}
    assert ("invoice", c["beta_invoice"]) not in found(client, c["number"])
    assert found(client, c["oracle_invoice"].upper()) == {("invoice", c["oracle_invoice"])}
    deal = SyncRecord.objects.get(xero_id=c["oracle_invoice"], outcome="created")
    assert ("invoice", c["oracle_invoice"]) in found(client, str(deal.pipedrive_id))

    # The list shows the names, readable; the values written follow the setting.
    page = client.get(reverse("admin:audit_syncrecord_changelist")).content.decode()
    assert "Oracle Alpha Ltd" in page and f"Invoice {c['number']} · Oracle Alpha Ltd" in page
    org = SyncRecord.objects.get(xero_id=c["oracle"], pipedrive_type="organization", outcome="created")
    name_row = next(r for r in org.fields_written if r["field"] == "name")
    assert name_row["new"] == {"masked": "O••••• A•••• L••", "full": "Oracle Alpha Ltd", "none": None}[mode]


def test_an_exact_email_finds_the_customers_records_in_masked_mode_without_storing_it(
    settings, client, finance_user, sandbox, sync_pair, customers
):
    c = customers
    client.force_login(finance_user)

    for term in (ORACLE_EMAIL, ORACLE_EMAIL.lower(), " olga@oracle-alpha.example "):
        oracle = found(client, term)
        assert {
            ("contact", c["oracle"]),
            ("invoice", c["oracle_invoice"]),
            ("payment", c["payment"]),
        } <= oracle
        assert not {x for x in oracle if x[1] in (c["beta"], c["beta_invoice"])}, term
    assert found(client, "accounts@oracle-alpha.exampl") == set()  # exact only: no prefix match
    assert found(client, "nobody@oracle-alpha.example") == set()
    assert ("contact", c["beta"]) in found(client, "hello@beta-borealis.example")

    # The address itself is nowhere in the audit rows: only its keyed hash.
    for record in SyncRecord.objects.all():
        stored = str([getattr(record, f.attname) for f in SyncRecord._meta.fields]).lower()
        assert "oracle-alpha.example" not in stored and "beta-borealis.example" not in stored
    contact = SyncRecord.objects.filter(xero_id=c["oracle"]).first()
    assert f" {email_key(ORACLE_EMAIL)} " in contact.email_keys
    # The key depends on the site's secret: another secret gives another key (nothing to look up).
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert email_key(ORACLE_EMAIL) not in contact.email_keys


def test_the_story_page_names_each_custom_field_its_source_and_mapping_row(
    settings, client, finance_user, sandbox, sync_pair, customers
):
    c = customers
    record = SyncRecord.objects.get(xero_id=c["oracle_invoice"], outcome="created")
    custom = [row for row in record.fields_written if row.get("custom")]
    rows = {r.pipedrive_field: r for r in FieldMapping.objects.filter(pair=sync_pair, target="deal")}
    assert custom and all(row["field"] in rows for row in custom)
    client.force_login(finance_user)

    page = client.get(reverse("admin:audit_syncrecord_change", args=[record.pk])).content.decode()
    assert "custom_fields" not in page  # no blob of hashes
    for row in custom:
        rule = rows[row["field"]]
        assert rule.pipedrive_field_name and rule.pipedrive_field_name in page
        assert row["source"] == rule.source_path and rule.source_path in page
        assert reverse("admin:mapping_fieldmapping_change", args=[rule.pk]) in page
    assert "Xero amount due" in page and "AmountDue" in page
    assert "Customer: <strong>Oracle Alpha Ltd</strong>" in page

    # The invoice changes: the amount due row is marked changed, the rest fold away as unchanged.
    sandbox.update_invoice(c["oracle_invoice"], Reference="PO 77")
    sandbox.pay(c["oracle_invoice"], 100)
    sync_records(sync_pair, "INVOICE", [c["oracle_invoice"]])
    latest = SyncRecord.objects.filter(xero_id=c["oracle_invoice"]).order_by("id").last()
    due = rows_by_name(latest)["Xero amount due"]
    assert due["changed"] is True and due["old"] != due["new"]
    assert rows_by_name(latest)["Xero invoice number"]["changed"] is False
    page = client.get(reverse("admin:audit_syncrecord_change", args=[latest.pk])).content.decode()
    changed_table, unchanged = page.split('id="unchanged-fields"', 1)
    assert "Xero amount due" in changed_table.split('id="changed-fields"', 1)[1]
    assert "changed</span>" in changed_table
    assert "<details" in changed_table[-200:] and "Xero invoice number" in unchanged


def rows_by_name(record):
    return {row.get("name") or row["field"]: row for row in record.fields_written}


def test_the_timeline_lists_every_sync_of_the_customer_newest_first(
    client, finance_user, sandbox, sync_pair, customers
):
    c = customers
    client.force_login(finance_user)
    url = reverse("admin:audit_syncrecord_timeline", args=[sync_pair.pk, c["oracle"]])
    # Linked from the list's customer column and from the story page.
    assert url in client.get(reverse("admin:audit_syncrecord_changelist")).content.decode()
    invoice_record = SyncRecord.objects.get(xero_id=c["oracle_invoice"], outcome="created")
    story = client.get(reverse("admin:audit_syncrecord_change", args=[invoice_record.pk])).content.decode()
    assert url in story

    page = client.get(url)
    assert page.status_code == 200
    shown = [(r.xero_type, r.xero_id) for r in page.context["records"]]
    expected = SyncRecord.objects.filter(xero_id__in=[c["oracle"], c["oracle_invoice"], c["payment"]])
    assert sorted(shown) == sorted((r.xero_type, r.xero_id) for r in expected)
    assert {t for t, _ in shown} == {"contact", "invoice", "payment"}
    assert not {x for x in shown if x[1] in (c["beta"], c["beta_invoice"])}
    ids = [r.pk for r in page.context["records"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert "Every sync of Oracle Alpha Ltd" in page.content.decode()

    # A later sync of the customer comes first.
    sandbox.update_contact(c["oracle"], Website="https://oracle-alpha.example")
    sync_records(sync_pair, "CONTACT", [c["oracle"]])
    first = client.get(url).context["records"][0]
    assert (first.xero_type, first.xero_id) == ("contact", c["oracle"])


def test_the_timeline_is_for_those_who_may_read_sync_records_and_changes_nothing(
    client, finance_user, integration_admin, sync_pair, customers
):
    c = customers
    url = reverse("admin:audit_syncrecord_timeline", args=[sync_pair.pk, c["oracle"]])
    for user in (finance_user, integration_admin):
        client.force_login(user)
        assert client.get(url).status_code == 200, user
        before = SyncRecord.objects.count()
        assert client.post(url).status_code == 405 and SyncRecord.objects.count() == before

    # Staff with every Finance permission but reading sync records: refused, and nothing shown.
    clerk = User.objects.create_user("clerk", "c@example.com", "pw-for-tests-1", is_staff=True)
    clerk.user_permissions.add(
        *Group.objects.get(name="Finance").permissions.exclude(codename="view_syncrecord")
    )
    client.force_login(clerk)
    refused = client.get(url)
    assert refused.status_code == 403 and b"Oracle Alpha" not in refused.content
    client.logout()
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(finance_user)
    assert (
        client.get(reverse("admin:audit_syncrecord_timeline", args=[sync_pair.pk, "no-such"])).status_code
        == 404
    )
