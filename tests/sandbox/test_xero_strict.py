"""Sandbox Xero refuses malformed writes with a ValidationException and changes nothing.

Each case here once answered 500 (and some saved the record first, after which every read of
the organisation failed too), or stored keys Xero does not know so that the official SDK could
not read the record back.
"""

import datetime as dt

import pytest

from sandbox.xero.models import Contact, Invoice
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _refused(response, message_part):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["Type"] == "ValidationException"
    messages = [m["Message"] for m in body["Elements"][0]["ValidationErrors"]]
    assert any(message_part in m for m in messages), messages


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("Addresses", [1], "Each of Addresses must be an object"),
        ("Phones", ["x"], "Each of Phones must be an object"),
        ("ContactPersons", [None], "Each of ContactPersons must be an object"),
        ("Phones", [{"PhoneType": "PAGER"}], "Phones.PhoneType must be one of"),
        ("Addresses", [{"City": 5}], "Addresses.City must be a string"),
        ("EmailAddress", ["a@b.example"], "EmailAddress must be a string"),
    ],
)
def test_malformed_contact_lists_are_refused_and_nothing_is_saved(xero, field, value, message):
    _refused(xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Corrupt Ltd", field: value}]}), message)
    assert not Contact.objects.filter(name="Corrupt Ltd").exists()
    assert xero.get("/Contacts").status_code == 200


def test_unknown_keys_inside_nested_records_are_dropped_like_xero_does(xero):
    body = {
        "Name": "Tidy Ltd",
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555", "Colour": "red"}],
        "Addresses": [{"AddressType": "STREET", "City": "Wellington", "Planet": "Earth"}],
        "ContactPersons": [{"FirstName": "Ana", "Shoe": 9}],
    }
    saved = xero.send("PUT", "/Contacts", {"Contacts": [body]}).json()["Contacts"][0]
    read = xero.get(f"/Contacts/{saved['ContactID']}").json()["Contacts"][0]
    mobile = next(p for p in read["Phones"] if p["PhoneType"] == "MOBILE")
    street = next(a for a in read["Addresses"] if a["AddressType"] == "STREET")
    assert mobile["PhoneNumber"] == "021 555" and "Colour" not in mobile
    assert street["City"] == "Wellington" and "Planet" not in street
    assert read["ContactPersons"] == [{"FirstName": "Ana"}]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"LineItems": [1]}, "Each line item must be an object"),
        ({"Contact": "x"}, "Contact must be an object"),
        ({"Contact": {"Name": ["x"]}}, "Contact Name must be a string"),
        ({"LineItems": [{"UnitAmount": "NaN"}]}, "UnitAmount must be a number"),
        ({"LineItems": [{"UnitAmount": 1e30}]}, "UnitAmount must be a number between"),
        ({"LineItems": [{"UnitAmount": 1, "Tracking": ["x"]}]}, "Each of Tracking must be an object"),
        ({"Date": "/Date(999999999999999999)/"}, "Date is not a valid date"),
        ({"Reference": {"a": 1}}, "Reference must be a string"),
        ({"InvoiceNumber": "x" * 300}, "InvoiceNumber must be 255 characters or less"),
    ],
)
def test_malformed_invoices_are_refused_and_nothing_is_saved(xero, change, message):
    contact = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Buyer Ltd"}]}).json()["Contacts"][0]
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact["ContactID"]},
        "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 10}],
        **change,
    }
    _refused(xero.send("PUT", "/Invoices", {"Invoices": [body]}), message)
    assert not Invoice.objects.exists()
    assert xero.get("/Invoices").status_code == 200


def test_unknown_tracking_keys_are_dropped(xero):
    contact = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Tracked Ltd"}]}).json()["Contacts"][0]
    line = {"UnitAmount": 10, "Tracking": [{"Name": "Region", "Option": "North", "Weather": "fine"}]}
    body = {"Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "LineItems": [line]}
    saved = xero.send("PUT", "/Invoices", {"Invoices": [body]}).json()["Invoices"][0]
    read = xero.get(f"/Invoices/{saved['InvoiceID']}").json()["Invoices"][0]
    assert read["LineItems"][0]["Tracking"] == [{"Name": "Region", "Option": "North"}]


def test_a_payment_naming_its_invoice_wrongly_is_refused(xero):
    _refused(
        xero.send(
            "PUT", "/Payments", {"Payments": [{"Invoice": "x", "Account": {"Code": "090"}, "Amount": 1}]}
        ),
        "Invoice must be an object",
    )


def test_an_invoice_shows_its_contact_as_the_contact_shows_itself(xero):
    contact = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Customer Ltd"}]}).json()["Contacts"][0]
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact["ContactID"]},
        "Status": "AUTHORISED",
        "DueDate": "2026-03-01",
        "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 10}],
    }
    invoice = xero.send("PUT", "/Invoices", {"Invoices": [body]}).json()["Invoices"][0]
    read_contact = xero.get(f"/Contacts/{contact['ContactID']}").json()["Contacts"][0]
    read_invoice = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert read_contact["IsCustomer"] is True
    assert read_invoice["Contact"]["IsCustomer"] is True


def test_a_failure_inside_a_write_answers_in_xeros_shape_and_saves_nothing(xero, monkeypatch):
    from sandbox.xero import representation

    def broken(*args, **kwargs):
        raise RuntimeError("a defect while rendering")

    monkeypatch.setattr(representation, "contacts", broken)
    response = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Half Saved Ltd"}]})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["Title"] == "Internal Server Error"
    assert not Contact.objects.filter(name="Half Saved Ltd").exists()


# Found by the fuzzer (tests/sandbox/test_fuzz.py at FUZZ_EXAMPLES=100).


def test_a_page_far_beyond_the_last_is_empty_rather_than_a_500(xero):
    xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Only Ltd"}]})

    response = xero.get("/Contacts", {"page": "11709403049115244298240", "pageSize": "255"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["Contacts"] == []
    assert body["pagination"]["itemCount"] == 1


@pytest.mark.parametrize(
    "path, key, element",
    [
        ("/Invoices", "Invoices", {"InvoiceID": True, "Type": "ACCREC"}),
        ("/Invoices", "Invoices", {"InvoiceID": "not-an-id", "Type": "BILL"}),
        ("/Payments", "Payments", {"BatchPaymentID": "g07ee8ad-9fe2-3801-a01f-6ac00a692825", "Invoice": {}}),
        ("/Contacts", "Contacts", {"ContactID": 5, "Name": ""}),
    ],
)
def test_a_refused_elements_ids_are_echoed_only_when_they_are_ids(xero, path, key, element):
    """Xero's ValidationException echoes the element as it read it: an identifier it could not read
    is not in it (the spec's Element types each ID as a uuid string)."""
    response = xero.send("PUT", path, {key: [element]})

    assert response.status_code == 400, response.content
    echoed = response.json()["Elements"][0]
    assert echoed["ValidationErrors"]
    for name in ("InvoiceID", "BatchPaymentID", "ContactID"):
        assert name not in echoed
    assert {k: v for k, v in echoed.items() if k != "ValidationErrors" and not k.endswith("ID")} == {
        k: v for k, v in element.items() if not k.endswith("ID")
    }


def test_a_refused_elements_valid_id_is_echoed(xero):
    invoice_id = "4f7cd2d2-5c8b-4f6a-9c44-0a4fd5f1e9a1"
    response = xero.send("POST", "/Invoices", {"Invoices": [{"InvoiceID": invoice_id}]})

    assert response.status_code == 400, response.content
    assert response.json()["Elements"][0]["InvoiceID"] == invoice_id


def test_with_summarize_errors_off_a_refused_element_comes_back_as_its_record_type_can_hold(xero):
    """The answer is a list of records (200): a refused element's values as sent (a Type outside the
    enum, a number for a string) would not fit the record's schema, so only a readable ID comes back."""
    invoice_id = "4f7cd2d2-5c8b-4f6a-9c44-0a4fd5f1e9a1"
    response = xero.send(
        "POST",
        "/Invoices?summarizeErrors=false",
        {"Invoices": [{"InvoiceID": True, "Type": "BILL"}, {"InvoiceID": invoice_id, "Reference": 5}]},
    )

    assert response.status_code == 200, response.content
    unreadable, unknown = response.json()["Invoices"]
    assert unreadable["StatusAttributeString"] == "ERROR" and unreadable["ValidationErrors"]
    assert "InvoiceID" not in unreadable and "Type" not in unreadable
    assert unknown["StatusAttributeString"] == "ERROR" and unknown["InvoiceID"] == invoice_id
    assert "Reference" not in unknown


@pytest.mark.parametrize("since", ["0208-04-13T09:33:49-20:04", "2020-01-01T00:00:00+23:59"])
def test_if_modified_since_with_any_offset_is_read_in_utc(xero, since):
    """PostgreSQL refuses a time zone displacement beyond ±15:59 (it answered 500): the moment is
    taken in UTC before it reaches the database."""
    from sandbox.xero.queries import if_modified_since

    xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Since Ltd"}]})

    assert if_modified_since(since).utcoffset() == dt.timedelta(0)
    response = xero.get("/Contacts", HTTP_IF_MODIFIED_SINCE=since)
    assert response.status_code == 200, response.content
    assert [c["Name"] for c in response.json()["Contacts"]] == ["Since Ltd"]


def test_if_modified_since_before_the_first_utc_day_is_refused_not_a_500(xero):
    response = xero.get("/Contacts", HTTP_IF_MODIFIED_SINCE="0001-01-01T00:00:00+05:00")

    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "contact",
    [
        {"Name": "Nul\u0000 Ltd"},
        {"Name": "Phone Ltd", "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021\u0000"}]},
        {"Name": "Half \ud800 Ltd"},
    ],
)
def test_text_no_database_can_store_is_refused_and_nothing_is_saved(xero, contact):
    """A NUL character or a lone surrogate (valid JSON escapes) answered 500 on PostgreSQL."""
    response = xero.send("POST", "/Contacts", {"Contacts": [contact]})

    assert response.status_code == 400, response.content
    assert response.json()["Type"] == "PostDataInvalidException"
    assert not Contact.objects.exists()


def test_a_nul_character_in_a_list_filter_is_a_query_error_not_a_500(xero):
    response = xero.get("/Invoices", {"SearchTerm": "a\u0000b"})

    assert response.status_code == 400, response.content
    assert response.json()["Type"] == "QueryParseException"
