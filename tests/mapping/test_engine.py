"""The pure mapping engine: every transform, path form, blank entry, odd name, long value and date form."""

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.engine import (
    Mapped,
    map_deal,
    map_organization,
    map_persons,
    normalize_email,
    normalize_org_name,
    parse_xero_date,
    payload_hash,
    payment_state,
    resolve,
    stage_rule_for,
)

CUSTOM = "a" * 40
CUSTOM2 = "b" * 40


@dataclass
class Rule:
    source_path: str
    pipedrive_field: str
    transform: str = "text"
    transform_options: dict = field(default_factory=dict)
    enabled: bool = True
    order: int = 0


@dataclass
class Stage:
    kind: str
    xero_value: str
    enabled: bool = True


def blank_addresses():
    blank = {"AddressLine1": "", "City": "", "Region": "", "PostalCode": "", "Country": ""}
    return [{"AddressType": "POBOX", **blank}, {"AddressType": "STREET", **blank}]


def blank_phones():
    return [
        {"PhoneType": t, "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}
        for t in ("DDI", "DEFAULT", "FAX", "MOBILE")
    ]


CONTACT = {
    "ContactID": "c-1",
    "ContactNumber": "1e400",
    "Name": "Acme Ltd",
    "FirstName": "Jane",
    "LastName": "Doe",
    "EmailAddress": "Jane@Acme.example",
    "DefaultCurrency": "NZD",
    "Website": "https://acme.example",
    "Addresses": [
        {
            "AddressType": "POBOX",
            "AddressLine1": "PO Box 1",
            "City": "Wellington",
            "PostalCode": "6011",
            "Country": "New Zealand",
        },
        {
            "AddressType": "STREET",
            "AddressLine1": "1 Queen St",
            "AddressLine2": "",
            "City": "Auckland",
            "Region": "",
            "PostalCode": "1010",
            "Country": "New Zealand",
        },
    ],
    "Phones": [
        {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
        {"PhoneType": "DEFAULT", "PhoneNumber": "555 0100", "PhoneAreaCode": "9", "PhoneCountryCode": "64"},
        {"PhoneType": "FAX", "PhoneNumber": "555 0199", "PhoneAreaCode": "9", "PhoneCountryCode": "64"},
        {"PhoneType": "MOBILE", "PhoneNumber": "21 555 777", "PhoneAreaCode": "", "PhoneCountryCode": "64"},
    ],
    "ContactGroups": [{"Name": "Wholesale"}, {"Name": "VIP"}],
    "ContactPersons": [
        {
            "FirstName": "Bob",
            "LastName": "Smith",
            "EmailAddress": "bob@acme.example",
            "IncludeInEmails": True,
        },
    ],
    "Balances": {"AccountsReceivable": {"Outstanding": 1500.5, "Overdue": 200}},
    "UpdatedDateUTC": "/Date(1700000000000+0000)/",
}

INVOICE = {
    "InvoiceID": "i-1",
    "InvoiceNumber": "INV-0042",
    "Type": "ACCREC",
    "Status": "AUTHORISED",
    "Contact": {"ContactID": "c-1", "Name": "Acme Ltd"},
    "Total": 1150.0,
    "AmountDue": 650.0,
    "AmountPaid": 500.0,
    "CurrencyCode": "nzd",
    "DueDate": "/Date(1735603200000+0000)/",
    "DueDateString": "2024-12-31T00:00:00",
}


# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Name", "Acme Ltd"),
        ("Addresses[STREET].City", "Auckland"),
        ("Addresses[street].City", "Auckland"),
        ("Addresses[POBOX].AddressLine1", "PO Box 1"),
        ("Addresses[0].City", "Wellington"),
        ("Addresses[-1].City", "Auckland"),
        ("Addresses[5].City", None),
        ("Addresses[DELIVERY].City", None),
        ("Phones[MOBILE].PhoneNumber", "21 555 777"),
        ("ContactPersons[0].FirstName", "Bob"),
        ("ContactGroups[0].Name", "Wholesale"),
        ("ContactGroups[1].Name", "VIP"),
        ("Balances.AccountsReceivable.Overdue", 200),
        ("Balances.AccountsPayable.Overdue", None),
        ("Name.Deeper", None),
        ("Missing", None),
        ("Name[0]", None),
    ],
)
def test_resolve_every_path_form(path, expected):
    assert resolve(CONTACT, path) == expected


@pytest.mark.parametrize("path", ["", "Addresses[STREET", "a..b", "1Name", "Name!"])
def test_malformed_paths_raise_naming_the_path(path):
    with pytest.raises(ValueError, match="Malformed source path"):
        resolve(CONTACT, path)


# --- transforms ----------------------------------------------------------------------------------


def org_value(rule, contact=CONTACT, context=None):
    mapped = map_organization(contact, [rule], context)
    key = rule.pipedrive_field
    return mapped.payload.get("custom_fields", {}).get(key) if len(key) == 40 else mapped.payload.get(key)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (Rule("Name", CUSTOM), "Acme Ltd"),
        (Rule("Balances.AccountsReceivable.Overdue", CUSTOM), "200"),
        (Rule("Balances.AccountsReceivable.Outstanding", CUSTOM), "1500.5"),
        (Rule("Addresses[STREET]", CUSTOM), "1 Queen St, Auckland 1010, New Zealand"),
        (Rule("ContactGroups", CUSTOM), "Wholesale, VIP"),
        (Rule("Balances.AccountsReceivable.Overdue", CUSTOM, "number"), 200.0),
        (Rule("Balances.AccountsReceivable.Outstanding", CUSTOM, "number", {"decimals": 0}), 1500.0),
        (Rule("Name", CUSTOM, "number"), None),
        (Rule("ContactNumber", CUSTOM, "number"), None),  # "1e400": no infinity in JSON
        (Rule("Balances.AccountsReceivable.Overdue", CUSTOM, "money"), {"value": 200.0, "currency": "NZD"}),
        (
            Rule("Balances.AccountsReceivable.Overdue", CUSTOM, "money", {"currency": "aud"}),
            {"value": 200.0, "currency": "AUD"},
        ),
        (Rule("UpdatedDateUTC", CUSTOM, "date"), "2023-11-14"),
        (Rule("Name", CUSTOM, "date"), None),
        (Rule("ContactGroups[0].Name", CUSTOM, "lookup", {"table": {"Wholesale": 7}}), 7),
        (Rule("ContactGroups[0].Name", CUSTOM, "lookup", {"table": {"WHOLESALE": 8}}), 8),
        (Rule("ContactGroups[1].Name", CUSTOM, "lookup", {"table": {"Wholesale": 7}, "default": 1}), 1),
        (Rule("ContactGroups[1].Name", CUSTOM, "lookup", {"table": {"Wholesale": 7}}), None),
        (
            Rule(
                "FirstName", CUSTOM, "join", {"sources": ["FirstName", "LastName", "Nope"], "separator": " "}
            ),
            "Jane Doe",
        ),
        (
            Rule(
                "Addresses[STREET].AddressLine1",
                CUSTOM,
                "join",
                {"sources": ["Addresses[STREET].AddressLine1", "Addresses[STREET].City"]},
            ),
            "1 Queen St, Auckland",
        ),
        (Rule("ContactGroups", CUSTOM, "join", {"separator": "; "}), "Wholesale; VIP"),
        (
            Rule(
                "Nope",
                CUSTOM,
                "first_non_empty",
                {"sources": ["Addresses[DELIVERY].City", "Nope", "Website"]},
            ),
            "https://acme.example",
        ),
        (Rule("Nope", CUSTOM, "first_non_empty"), None),
        (
            Rule("Connector.AvailableCredit", CUSTOM, "money", {"currency_path": "Connector.Currency"}),
            {"value": 300.0, "currency": "EUR"},
        ),
        (Rule("Connector.OverCreditLimit", CUSTOM, "lookup", {"table": {"Yes": "over", "No": "ok"}}), "over"),
        (Rule("Connector.XeroUrl", CUSTOM), "https://go.xero.com/Contacts/View/c-1"),
    ],
)
def test_every_transform(rule, expected):
    context = {
        "AvailableCredit": Decimal("300.00"),
        "Currency": "EUR",
        "OverCreditLimit": True,
        "XeroUrl": "https://go.xero.com/Contacts/View/c-1",
    }
    assert org_value(rule, context=context) == expected


def test_unknown_transform_raises_naming_the_rule():
    with pytest.raises(ValueError, match=r"Name → website.*unknown transform 'upper'"):
        map_organization(CONTACT, [Rule("Name", "website", "upper")])


def test_custom_fields_go_under_custom_fields_and_standard_at_top_level():
    rules = [Rule("ContactID", CUSTOM, order=2), Rule("Website", "website", order=1), Rule("Nope", CUSTOM2)]
    mapped = map_organization(CONTACT, rules)
    assert mapped.payload == {
        "name": "Acme Ltd",
        "website": "https://acme.example",
        "custom_fields": {CUSTOM: "c-1"},
    }
    assert mapped.fields_mapped == ["name", "website", CUSTOM]  # rule order; the empty one is left out


def test_disabled_rules_are_skipped_and_clear_when_empty_sends_null():
    rules = [
        Rule("ContactID", CUSTOM, enabled=False),
        Rule("Nope", CUSTOM2, transform_options={"clear_when_empty": True}),
    ]
    mapped = map_organization(CONTACT, rules)
    assert mapped.payload["custom_fields"] == {CUSTOM2: None}
    assert mapped.fields_mapped == ["name"]


def test_address_rule_builds_pipedrive_address_object_and_skips_blank_entries():
    rule = Rule(
        "Addresses[STREET]",
        "address",
        "first_non_empty",
        {"sources": ["Addresses[STREET]", "Addresses[POBOX]"]},
    )
    assert map_organization(CONTACT, [rule]).payload["address"] == {
        "value": "1 Queen St, Auckland 1010, New Zealand",
        "locality": "Auckland",
        "postal_code": "1010",
        "country": "New Zealand",
    }
    street_blank = {**CONTACT, "Addresses": [CONTACT["Addresses"][0], blank_addresses()[1]]}
    assert (
        map_organization(street_blank, [rule]).payload["address"]["value"]
        == "PO Box 1, Wellington 6011, New Zealand"
    )
    all_blank = {**CONTACT, "Addresses": blank_addresses()}
    mapped = map_organization(all_blank, [rule])
    assert "address" not in mapped.payload and "address" not in mapped.fields_mapped


# --- names, limits, non-ASCII ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "name"),
    [
        ({"Name": "  Acme   Ltd "}, "Acme Ltd"),
        ({"Name": "", "FirstName": "Ana", "LastName": "Ngata"}, "Ana Ngata"),
        ({"EmailAddress": "only@mail.example"}, "only@mail.example"),
        ({"ContactNumber": "CN-7"}, "CN-7"),
        ({"ContactID": "c-9"}, "Xero contact c-9"),
        ({}, "(no name in Xero)"),
        ({"Name": "Te Rūnanga o Ngāi Tahu"}, "Te Rūnanga o Ngāi Tahu"),
        ({"Name": "株式会社テスト"}, "株式会社テスト"),
        ({"Name": "Café 🚀 Ltd"}, "Café 🚀 Ltd"),
    ],
)
def test_organization_name_fallbacks_and_non_ascii(contact, name):
    mapped = map_organization(contact, [])
    assert mapped.payload["name"] == name and mapped.fields_mapped == ["name"]
    json.dumps(mapped.payload)  # always serializable


@pytest.mark.parametrize(
    ("options", "limit"), [({}, 255), ({"field_type": "text"}, 65_000), ({"max_length": 50}, 50)]
)
def test_long_values_are_trimmed_to_pipedrive_limits(options, limit):
    long = "ā" * 70_000
    mapped = map_organization(
        {"Name": "x" * 300, "Website": long}, [Rule("Website", CUSTOM, transform_options=options)]
    )
    assert len(mapped.payload["name"]) == 255
    assert len(mapped.payload["custom_fields"][CUSTOM]) == limit


def test_long_person_name_and_deal_title_are_trimmed():
    persons = map_persons({"FirstName": "N" * 200, "LastName": "M" * 200}, [])
    assert len(persons[0][1].payload["name"]) == 255
    deal = map_deal({**INVOICE, "InvoiceNumber": "I" * 300}, [])
    assert len(deal.payload["title"]) == 255


# --- persons -------------------------------------------------------------------------------------


def test_persons_own_person_first_with_phones_then_contact_persons():
    persons = map_persons(CONTACT, [])
    assert [key for key, _ in persons] == ["jane@acme.example", "bob@acme.example"]
    jane, bob = persons[0][1], persons[1][1]
    assert jane.payload == {
        "name": "Jane Doe",
        "emails": [{"value": "Jane@Acme.example", "primary": True, "label": "work"}],
        "phones": [
            {"value": "+64 9 555 0100", "primary": True, "label": "work"},
            {"value": "+64 21 555 777", "primary": False, "label": "mobile"},
        ],
    }
    assert jane.fields_mapped == ["name", "emails", "phones"]
    assert bob.payload == {
        "name": "Bob Smith",
        "emails": [{"value": "bob@acme.example", "primary": True, "label": "work"}],
    }
    assert "org_id" not in jane.payload


def test_blank_phones_give_no_phones():
    persons = map_persons({**CONTACT, "Phones": blank_phones()}, [])
    assert "phones" not in persons[0][1].payload


def test_contact_with_only_an_email_is_one_person_named_by_email():
    persons = map_persons({"Name": "Acme", "EmailAddress": " Accounts@Acme.example "}, [])
    assert persons == [
        (
            "accounts@acme.example",
            Mapped(
                {
                    "name": "Accounts@Acme.example",
                    "emails": [{"value": "Accounts@Acme.example", "primary": True, "label": "work"}],
                },
                ["name", "emails"],
            ),
        )
    ]


def test_without_own_person_the_include_in_emails_person_comes_first():
    contact = {
        "Name": "Acme",
        "ContactPersons": [
            {"FirstName": "Al", "LastName": "", "EmailAddress": "", "IncludeInEmails": False},
            {
                "FirstName": "",
                "LastName": "",
                "EmailAddress": "",
                "IncludeInEmails": True,
            },  # nothing: skipped
            {"FirstName": "Cy", "LastName": "Ng", "EmailAddress": "cy@x.example", "IncludeInEmails": True},
        ],
    }
    persons = map_persons(contact, [])
    assert [key for key, _ in persons] == ["cy@x.example", "name:al"]
    assert persons[1][1].payload == {"name": "Al"}


def test_duplicate_persons_are_merged_by_key():
    contact = {
        "FirstName": "",
        "LastName": "",
        "EmailAddress": "JANE@acme.example",
        "ContactPersons": [
            {"FirstName": "Jane", "LastName": "Doe", "EmailAddress": "jane@ACME.example"},
            {"FirstName": "Ōtautahi", "LastName": "Lee"},
            {"FirstName": "ōtautahi ", "LastName": " LEE"},
        ],
    }
    persons = map_persons(contact, [])
    assert [key for key, _ in persons] == ["jane@acme.example", "name:ōtautahi lee"]
    assert persons[0][1].payload["name"] == "Jane Doe"  # the name filled in from the duplicate


def test_contact_without_any_person():
    assert map_persons({"Name": "Acme", "ContactPersons": [{"FirstName": " "}]}, []) == []


def test_person_rules_read_the_contact_persons_own_values():
    rules = [Rule("EmailAddress", CUSTOM), Rule("Name", CUSTOM2), Rule("IncludeInEmails", "job_title")]
    persons = dict(map_persons(CONTACT, rules))
    assert persons["jane@acme.example"].payload["custom_fields"] == {
        CUSTOM: "Jane@Acme.example",
        CUSTOM2: "Acme Ltd",
    }
    assert persons["bob@acme.example"].payload["custom_fields"] == {
        CUSTOM: "bob@acme.example",
        CUSTOM2: "Acme Ltd",
    }
    assert persons["bob@acme.example"].payload["job_title"] == "Yes"


# --- deals ---------------------------------------------------------------------------------------


def test_deal_title_value_currency_and_rules():
    rules = [
        Rule("DueDate", "expected_close_date", "date"),
        Rule("AmountDue", CUSTOM, "money"),
        Rule("InvoiceNumber", CUSTOM2),
    ]
    mapped = map_deal(INVOICE, rules)
    assert mapped.payload == {
        "title": "INV-0042 · Acme Ltd",
        "value": 1150.0,
        "currency": "NZD",
        "expected_close_date": "2024-12-31",
        "custom_fields": {CUSTOM: {"value": 650.0, "currency": "NZD"}, CUSTOM2: "INV-0042"},
    }
    assert mapped.fields_mapped == ["title", "value", "currency", "expected_close_date", CUSTOM, CUSTOM2]
    assert not {"org_id", "stage_id", "status"} & set(mapped.payload)


@pytest.mark.parametrize(
    ("invoice", "kwargs", "title", "value"),
    [
        ({**INVOICE, "InvoiceNumber": ""}, {}, "Acme Ltd", 1150.0),
        ({**INVOICE, "Contact": {}}, {}, "INV-0042", 1150.0),
        ({"InvoiceID": "i-9"}, {}, "Invoice i-9", None),
        (INVOICE, {"value_from": "AmountDue"}, "INV-0042 · Acme Ltd", 650.0),
        (
            INVOICE,
            {"title_template": "{Type}/{InvoiceNumber} for {Contact.Name} ({Missing.Path})"},
            "ACCREC/INV-0042 for Acme Ltd ()",
            1150.0,
        ),
        (INVOICE, {"title_template": "{Broken"}, "Invoice INV-0042", 1150.0),
        ({**INVOICE, "Total": "1,234.50"}, {}, "INV-0042 · Acme Ltd", 1234.5),
        ({**INVOICE, "Total": Decimal("99.99")}, {}, "INV-0042 · Acme Ltd", 99.99),
    ],
)
def test_deal_titles_and_values(invoice, kwargs, title, value):
    mapped = map_deal(invoice, [], **kwargs)
    assert mapped.payload["title"] == title
    assert mapped.payload.get("value") == value


@pytest.mark.parametrize(
    ("code", "expected"), [("usd", "USD"), ("EUR", "EUR"), ("", None), ("EURO", None), (None, None)]
)
def test_deal_currencies(code, expected):
    assert map_deal({**INVOICE, "CurrencyCode": code}, []).payload.get("currency") == expected


@pytest.mark.parametrize(
    ("paid", "due", "status", "expected"),
    [
        (0, 100, "AUTHORISED", None),
        (50, 50, "AUTHORISED", "PART_PAID"),
        (100, 0, "PAID", "PAID"),
        (0, 0, "PAID", "PAID"),
        (0, 0, "DRAFT", None),
        (None, None, "VOIDED", None),
    ],
)
def test_payment_state(paid, due, status, expected):
    assert payment_state({"AmountPaid": paid, "AmountDue": due, "Status": status}) == expected


@pytest.mark.parametrize(
    ("paid", "credited", "due", "status", "expected"),
    [
        (0, 40, 60, "AUTHORISED", "PART_PAID"),  # a credit note covers part of it
        (30, 20, 50, "AUTHORISED", "PART_PAID"),
        (0, 100, 0, "PAID", "PAID"),  # settled by a credit note / prepayment / overpayment
        (60, 40, 0, "AUTHORISED", "PAID"),
        (0, 0, 100, "AUTHORISED", None),
        (0, None, 100, "AUTHORISED", None),
    ],
)
def test_payment_state_counts_amount_credited_as_paid(paid, credited, due, status, expected):
    invoice = {"AmountPaid": paid, "AmountCredited": credited, "AmountDue": due, "Status": status}
    assert payment_state(invoice) == expected


STAGES = [
    Stage("invoice_status", "DRAFT"),
    Stage("invoice_status", "AUTHORISED"),
    Stage("invoice_status", "PAID"),
    Stage("invoice_status", "VOIDED", enabled=False),
    Stage("payment_state", "PART_PAID"),
    Stage("payment_state", "PAID"),
]


@pytest.mark.parametrize(
    ("status", "state", "expected"),
    [
        ("DRAFT", None, ("invoice_status", "DRAFT")),
        ("AUTHORISED", None, ("invoice_status", "AUTHORISED")),
        ("AUTHORISED", "PART_PAID", ("payment_state", "PART_PAID")),
        ("PAID", "PAID", ("payment_state", "PAID")),
        ("DRAFT", "PART_PAID", ("invoice_status", "DRAFT")),
        ("VOIDED", None, None),
        ("SUBMITTED", None, None),
    ],
)
def test_stage_rule_for(status, state, expected):
    rule = stage_rule_for(STAGES, status, state)
    assert (rule.kind, rule.xero_value) == expected if expected else rule is None


def test_stage_rule_falls_back_to_status_without_a_payment_state_rule():
    rule = stage_rule_for([Stage("invoice_status", "AUTHORISED")], "AUTHORISED", "PART_PAID")
    assert rule.xero_value == "AUTHORISED"


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1700000000000)/", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)),
        ("/Date(1700000000000+0000)/", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)),
        ("\\/Date(1419937200000+0000)\\/", dt.datetime(2014, 12, 30, 11, 0, tzinfo=dt.UTC)),
        ("/Date(-86400000)/", dt.datetime(1969, 12, 31, tzinfo=dt.UTC)),
        ("2024-01-31", dt.date(2024, 1, 31)),
        ("2019-03-07T00:00:00", dt.datetime(2019, 3, 7)),
        ("2019-11-14T18:10:38Z", dt.datetime(2019, 11, 14, 18, 10, 38, tzinfo=dt.UTC)),
        (dt.date(2020, 2, 29), dt.date(2020, 2, 29)),
        ("", None),
        ("soon", None),
        (None, None),
        (12345, None),
        ("/Date(99999999999999999999)/", None),
    ],
)
def test_parse_xero_date(raw, expected):
    assert parse_xero_date(raw) == expected


def test_xero_date_offset_picks_the_local_date():
    # 11:00 UTC on the 30th is already the 31st in New Zealand (+1300).
    parsed = parse_xero_date("/Date(1419937200000+1300)/")
    assert parsed.utcoffset() == dt.timedelta(hours=13) and parsed.date() == dt.date(2014, 12, 31)
    assert (
        map_deal(
            {**INVOICE, "DueDate": "/Date(1419937200000+1300)/"},
            [Rule("DueDate", "expected_close_date", "date")],
        ).payload["expected_close_date"]
        == "2014-12-31"
    )
    assert parse_xero_date("/Date(1419937200000-0530)/").utcoffset() == -dt.timedelta(hours=5, minutes=30)


# --- hashing and normalizing ---------------------------------------------------------------------


def test_payload_hash_is_stable_across_key_order_and_types():
    a = {"name": "Acme", "custom_fields": {CUSTOM: {"value": 1.5, "currency": "NZD"}, CUSTOM2: "x"}}
    b = {"custom_fields": {CUSTOM2: "x", CUSTOM: {"currency": "NZD", "value": 1.5}}, "name": "Acme"}
    assert payload_hash(a) == payload_hash(b) and len(payload_hash(a)) == 64
    assert payload_hash({"v": Decimal("1.5")}) == payload_hash({"v": 1.5})
    assert payload_hash({"d": dt.date(2024, 1, 2)}) == payload_hash({"d": "2024-01-02"})
    assert payload_hash(a) != payload_hash({**a, "name": "Acme2"})


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME Ltd", "Acme Limited"),
        ("Acme Limited", "acme limited."),
        ("Acme, Inc.", "ACME Incorporated"),
        ("Acme  Corp", "acme corporation"),
        ("Smith & Co", "Smith and Company"),
        ("Widgets Pty. Ltd.", "widgets proprietary limited"),
        ("Foo L.L.C.", "foo llc"),
        ("Müller GmbH", "MÜLLER GMBH"),
        ("Ｆｕｌｌｗｉｄｔｈ Ltd", "Fullwidth Limited"),  # noqa: RUF001 (NFKC folds full-width)
        ("O'Brien Plumbing", "OBrien plumbing"),
        ("株式会社テスト", "株式会社テスト "),
    ],
)
def test_normalize_org_name_equivalences(a, b):
    assert normalize_org_name(a) == normalize_org_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme Ltd", "Acme Inc"),
        ("Acme Ltd", "Acme"),
        ("Acme", "Acne"),
        ("Māori Arts", "Maori Arts"),
        ("Smith Jones", "SmithJones"),
    ],
)
def test_normalize_org_name_non_equivalences(a, b):
    assert normalize_org_name(a) != normalize_org_name(b)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Jane@Acme.Example ", "jane@acme.example"),
        ("mailto:x@y.nz", "x@y.nz"),
        ("", ""),
        (None, ""),
        ("not an email", ""),
        ("a@b", ""),
        ("a b@c.example", ""),
        ("ä@ü.example", "ä@ü.example"),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


# --- properties ----------------------------------------------------------------------------------

text = st.one_of(st.none(), st.text(max_size=400), st.integers(), st.floats(allow_nan=True), st.booleans())
phone = st.fixed_dictionaries(
    {
        "PhoneType": st.sampled_from(["DEFAULT", "MOBILE", "FAX", "DDI", "X"]),
        "PhoneNumber": text,
        "PhoneAreaCode": text,
        "PhoneCountryCode": text,
    }
)
address = st.fixed_dictionaries(
    {
        "AddressType": st.sampled_from(["STREET", "POBOX"]),
        "AddressLine1": text,
        "City": text,
        "PostalCode": text,
        "Country": text,
    }
)
person = st.fixed_dictionaries(
    {
        "FirstName": text,
        "LastName": text,
        "EmailAddress": text,
        "IncludeInEmails": st.one_of(st.none(), st.booleans()),
    }
)
contacts = st.fixed_dictionaries(
    {"Name": text, "FirstName": text, "LastName": text, "EmailAddress": text},
    optional={
        "Phones": st.lists(phone, max_size=5),
        "Addresses": st.lists(address, max_size=3),
        "ContactPersons": st.lists(person, max_size=5),
        "ContactGroups": st.lists(st.fixed_dictionaries({"Name": text}), max_size=3),
        "UpdatedDateUTC": text,
    },
)
ALL_RULES = [
    Rule("Name", CUSTOM),
    Rule("Addresses[STREET]", "address"),
    Rule("Phones[MOBILE].PhoneNumber", CUSTOM2),
    Rule("UpdatedDateUTC", "a1" * 20, "date"),
    Rule("Name", "b1" * 20, "number"),
    Rule("ContactGroups[0].Name", "c1" * 20, "lookup", {"table": {"A": 1}}),
    Rule("Name", "d1" * 20, "join", {"sources": ["FirstName", "LastName", "ContactPersons"]}),
    Rule("Name", "e1" * 20, "first_non_empty", {"sources": ["EmailAddress", "Name"]}),
    Rule("Name", "f1" * 20, "money", {"currency": "NZD"}),
]


@settings(max_examples=150, deadline=None)
@given(contacts)
def test_engine_never_raises_and_names_fit(contact):
    org = map_organization(contact, ALL_RULES)
    assert 0 < len(org.payload["name"]) <= 255
    persons = map_persons(contact, ALL_RULES)
    keys = [key for key, _ in persons]
    assert len(keys) == len(set(keys))
    for _, mapped in persons:
        assert 0 < len(mapped.payload["name"]) <= 255
        assert len(mapped.payload.get("phones", [])) == len(
            {p["value"] for p in mapped.payload.get("phones", [])}
        )
    for value in org.payload.get("custom_fields", {}).values():
        assert not isinstance(value, str) or len(value) <= 255
    payload_hash(org.payload)
    json.dumps([org.payload, [m.payload for _, m in persons]], allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "InvoiceNumber": text,
            "Total": text,
            "CurrencyCode": text,
            "Contact": st.fixed_dictionaries({"Name": text}),
            "DueDate": text,
        }
    )
)
def test_deal_never_raises_and_title_fits(invoice):
    mapped = map_deal(
        invoice, [Rule("DueDate", "expected_close_date", "date"), Rule("Total", CUSTOM, "money")]
    )
    assert 0 < len(mapped.payload["title"]) <= 255
    json.dumps(mapped.payload, allow_nan=False)
