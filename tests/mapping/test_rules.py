"""Rule selectors (pair rows else defaults), credit limits, engine context, source-path validation and the
defaults installed by the data migration."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from mapping.engine import map_deal, map_organization, stage_rule_for
from mapping.models import CreditLimit, FieldMapping, StageMapping
from mapping.rules import (
    contact_context,
    credit_limit_for,
    deal_context,
    field_rules,
    known_paths,
    stage_rules,
    validate_field,
    validate_options,
    validate_source_path,
)
from specs import spec_path

pytestmark = pytest.mark.django_db
CUSTOM = "c" * 40
SPEC = spec_path("xero", "accounting")


def test_defaults_are_installed_by_the_data_migration():
    defaults = {(r.target, r.source_path, r.pipedrive_field) for r in FieldMapping.objects.filter(pair=None)}
    assert ("organization", "Addresses[STREET]", "address") in defaults
    assert ("deal", "DueDate", "expected_close_date") in defaults
    stages = {
        (s.kind, s.xero_value): (s.stage_name, s.deal_status) for s in StageMapping.objects.filter(pair=None)
    }
    assert stages == {
        ("invoice_status", "DRAFT"): ("Draft", ""),
        ("invoice_status", "SUBMITTED"): ("Awaiting approval", ""),
        ("invoice_status", "AUTHORISED"): ("Awaiting payment", "open"),
        ("invoice_status", "PAID"): ("Paid", "won"),
        ("invoice_status", "VOIDED"): ("Voided", "lost"),
        ("invoice_status", "DELETED"): ("Voided", "lost"),
        ("payment_state", "PART_PAID"): ("Part paid", "open"),
        ("payment_state", "PAID"): ("Paid", "won"),
        ("due_state", "OVERDUE"): ("Overdue", "open"),
    }
    # Every default row passes the validation the admin applies.
    for row in FieldMapping.objects.filter(pair=None):
        validate_options(row.transform, row.transform_options)
        validate_source_path(row.target, row.source_path)
        validate_field(row.target, row.pipedrive_field, row.transform, None)


def test_field_rules_use_the_pairs_rows_else_the_defaults(pair):
    default_org = field_rules(pair, "organization")
    assert [r.pipedrive_field for r in default_org] == ["address", "website"]
    assert all(r.pair_id is None for r in default_org)
    FieldMapping.objects.create(
        pair=pair, target="organization", source_path="ContactID", pipedrive_field=CUSTOM, order=5
    )
    FieldMapping.objects.create(
        pair=pair, target="organization", source_path="Name", pipedrive_field="website", enabled=False
    )
    own = field_rules(pair, "organization")
    assert [(r.pair_id, r.pipedrive_field) for r in own] == [(pair.pk, CUSTOM)]
    assert [r.pipedrive_field for r in field_rules(pair, "deal")] == ["expected_close_date"]  # still defaults
    assert [r.pipedrive_field for r in field_rules(None, "organization")] == ["address", "website"]


def test_editing_a_row_changes_the_next_payload(pair):
    row = FieldMapping.objects.create(
        pair=pair, target="organization", source_path="Name", pipedrive_field=CUSTOM
    )
    contact = {"Name": "Acme", "ContactNumber": "C-7"}
    assert map_organization(contact, field_rules(pair, "organization")).payload["custom_fields"] == {
        CUSTOM: "Acme"
    }
    row.source_path = "ContactNumber"
    row.save()
    assert map_organization(contact, field_rules(pair, "organization")).payload["custom_fields"] == {
        CUSTOM: "C-7"
    }
    row.enabled = False
    row.save()
    assert "custom_fields" not in map_organization(contact, field_rules(pair, "organization")).payload


def test_stage_rules_fall_back_per_kind(pair):
    StageMapping.objects.create(
        pair=pair, kind="invoice_status", xero_value="AUTHORISED", stage_id=9, stage_name="Mine"
    )
    rules = stage_rules(pair)
    status_rules = [r for r in rules if r.kind == "invoice_status"]
    assert [(r.pair_id, r.xero_value) for r in status_rules] == [(pair.pk, "AUTHORISED")]
    assert {r.xero_value for r in rules if r.kind == "payment_state"} == {"PART_PAID", "PAID"}
    assert stage_rule_for(rules, "AUTHORISED", None).stage_id == 9
    assert stage_rule_for(rules, "AUTHORISED", "PART_PAID").stage_name == "Part paid"  # default payment rule
    assert stage_rule_for(rules, "DRAFT", None) is None  # the pair's own status rows replace the defaults


def test_credit_limit_contact_then_group_then_default(pair):
    contact = {"ContactID": "c-1", "ContactGroups": [{"Name": "Retail"}, {"Name": "Wholesale"}]}
    assert credit_limit_for(pair, contact) is None
    CreditLimit.objects.create(pair=pair, amount=Decimal("1000"))
    assert credit_limit_for(pair, contact) == Decimal("1000")
    CreditLimit.objects.create(pair=pair, contact_group="wholesale", amount=Decimal("5000"))
    assert credit_limit_for(pair, contact) == Decimal("5000")
    CreditLimit.objects.create(pair=pair, contact_id="c-1", contact_name="Acme", amount=Decimal("250"))
    assert credit_limit_for(pair, contact) == Decimal("250")
    assert credit_limit_for(pair, {"ContactID": "c-2"}) == Decimal("1000")


def test_contexts_compute_available_credit_and_flags(pair):
    CreditLimit.objects.create(pair=pair, amount=Decimal("1000.00"))
    contact = {
        "ContactID": "c-1",
        "DefaultCurrency": "AUD",
        "Balances": {"AccountsReceivable": {"Outstanding": 1200.5}},
    }
    ctx = contact_context(pair, contact)
    assert ctx["CreditLimit"] == Decimal("1000.00") and ctx["AvailableCredit"] == Decimal("-200.50")
    assert ctx["OverCreditLimit"] is True and ctx["XeroUrl"] == "https://go.xero.com/Contacts/View/c-1"
    rule = type(
        "R",
        (),
        {
            "source_path": "Connector.AvailableCredit",
            "pipedrive_field": CUSTOM,
            "transform": "money",
            "transform_options": {},
            "enabled": True,
            "order": 0,
        },
    )
    assert map_organization(contact, [rule], ctx).payload["custom_fields"][CUSTOM] == {
        "value": -200.5,
        "currency": "AUD",
    }
    ok = contact_context(pair, {"ContactID": "c-2", "Balances": {"AccountsReceivable": {"Outstanding": 100}}})
    dctx = deal_context(ok, {"InvoiceID": "i-1", "CurrencyCode": "NZD"}, deal_value=950, deal_open=True)
    assert dctx["AvailableCredit"] == Decimal("900.00") and dctx["OverCreditLimit"] is True
    assert dctx["XeroUrl"].endswith("InvoiceID=i-1")
    assert deal_context(ok, {"InvoiceID": "i-2"}, deal_value=50, deal_open=True)["OverCreditLimit"] is False
    assert deal_context(ok, {"InvoiceID": "i-3"}, deal_value=950, deal_open=False)["OverCreditLimit"] is False
    # An AUTHORISED invoice is already in the outstanding 100: 950 ≤ 900 + its AmountDue 100.
    authorised = {"InvoiceID": "i-4", "Status": "AUTHORISED", "AmountDue": 100}
    assert deal_context(ok, authorised, deal_value=950, deal_open=True)["OverCreditLimit"] is False
    assert deal_context(ok, authorised, deal_value=1000.01, deal_open=True)["OverCreditLimit"] is True
    flag = type(
        "R",
        (),
        {
            "source_path": "Connector.OverCreditLimit",
            "pipedrive_field": CUSTOM,
            "transform": "text",
            "transform_options": {},
            "enabled": True,
            "order": 0,
        },
    )
    assert map_deal({"InvoiceNumber": "I-1"}, [flag], dctx).payload["custom_fields"] == {CUSTOM: "Yes"}


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("organization", "Name"),
        ("organization", "Addresses[STREET].City"),
        ("organization", "Addresses[STREET]"),
        ("organization", "Addresses"),
        ("organization", "Phones[MOBILE].PhoneNumber"),
        ("organization", "ContactPersons[0].EmailAddress"),
        ("organization", "ContactGroups[0].Name"),
        ("organization", "Balances.AccountsReceivable.Overdue"),
        ("organization", "Connector.AvailableCredit"),
        ("person", "IncludeInEmails"),
        ("deal", "Contact.Name"),
        ("deal", "DueDate"),
        ("deal", "Connector.XeroUrl"),
    ],
)
def test_known_source_paths_pass(target, path):
    validate_source_path(target, path)


@pytest.mark.parametrize(
    ("target", "path", "message"),
    [
        ("organization", "Nmae", "Unknown Xero source path 'Nmae'"),
        ("organization", "name", "Did you mean Name?"),
        ("organization", "Addresses[STREET].Town", "'Addresses[STREET].Town'"),
        ("organization", "Balances.Overdue", "'Balances.Overdue'"),
        ("organization", "InvoiceNumber", "not a field of a Xero Contact"),
        ("deal", "Balances.AccountsReceivable.Overdue", "not a field of a Xero Invoice"),
        ("deal", "Connector.Secret", "'Connector.Secret'"),
        ("organization", "Addresses[STREET", "Malformed source path"),
    ],
)
def test_unknown_source_paths_are_refused_naming_them(target, path, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("?", r"\?")):
        validate_source_path(target, path)


LIVE = [
    {"key": "name", "name": "Name", "field_type": "varchar"},
    {"key": "owner_id", "name": "Owner", "field_type": "user"},
    {"key": CUSTOM, "name": "Xero overdue", "field_type": "monetary"},
    {"key": "d" * 40, "name": "Segment", "field_type": "enum"},
    {"key": "e" * 40, "name": "Due", "field_type": "date"},
]


@pytest.mark.parametrize(
    ("key", "transform", "live", "message"),
    [
        ("f" * 40, "text", LIVE, "does not exist in this Pipedrive company"),
        (CUSTOM, "text", LIVE, "'Xero overdue'.*type 'monetary'"),
        ("d" * 40, "number", LIVE, "'Segment'.*type 'enum'"),
        ("e" * 40, "money", LIVE, "'Due'.*type 'date'"),
        ("owner_id", "text", LIVE, "'Owner'.*type 'user'"),
        (CUSTOM, "text", None, "Default rows .* may only target standard organization fields"),
        ("website", "date", None, "'Website'.*type 'varchar'"),
    ],
)
def test_wrong_fields_are_refused_naming_them(key, transform, live, message):
    with pytest.raises(ValidationError, match=message):
        validate_field("organization", key, transform, live)


def test_right_fields_pass_and_return_their_type():
    assert validate_field("organization", CUSTOM, "money", LIVE)["field_type"] == "monetary"
    assert validate_field("organization", "d" * 40, "lookup", LIVE)["name"] == "Segment"
    assert validate_field("organization", "address", "first_non_empty", LIVE)["field_type"] == "address"
    assert validate_field("deal", "value", "number", None)["field_type"] == "double"


@pytest.mark.parametrize(
    ("transform", "options", "message"),
    [
        ("lookup", {}, "lookup needs options"),
        ("join", {"sources": "Name"}, "must be a list"),
        ("text", {"max_length": -1}, "max_length"),
        ("text", [], "JSON object"),
        ("shout", {}, "Unknown transform 'shout'"),
    ],
)
def test_bad_options_are_refused(transform, options, message):
    with pytest.raises(ValidationError, match=message):
        validate_options(transform, options)


def test_committed_paths_match_the_xero_spec():
    import importlib.util
    import json

    from django.conf import settings

    base = Path(settings.BASE_DIR)
    spec = importlib.util.spec_from_file_location("xero_source_paths", base / "scripts/xero_source_paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((base / "mapping/xero_paths.json").read_text())
    assert module.build(SPEC) == committed
    assert "Balances.AccountsReceivable.Overdue" in known_paths("organization")


def test_a_link_re_pointed_in_the_admin_is_written_in_full_next_time(admin_client, pair):
    from mapping.models import RecordLink

    link = RecordLink.objects.create(
        pair=pair, xero_type="contact", xero_id="c-9", pipedrive_type="organization", pipedrive_id=5,
        payload_hash="abc",
    )  # fmt: skip
    response = admin_client.post(
        f"/admin/mapping/recordlink/{link.pk}/change/",
        {"pair": pair.pk, "xero_type": "contact", "xero_id": "c-9", "pipedrive_type": "organization",
         "pipedrive_id": 6, "state": "linked"},
    )  # fmt: skip
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.pipedrive_id, link.payload_hash) == (6, "")
