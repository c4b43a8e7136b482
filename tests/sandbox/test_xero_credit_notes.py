"""Sandbox Xero credit notes: created, listed with their allocations, allocated to invoices (reducing
AmountDue, raising AmountCredited, paying the invoice off), announced by CREDITNOTE webhooks."""

import json
import uuid

import pytest
import responses

from sandbox import webhooks
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

RECEIVER = "https://receiver.example.com/xero/"


def _put(xero, path, body, status=200):
    response = xero.send("PUT", path, body)
    assert response.status_code == status, response.content
    return response.json()


def _customer_with_invoice(xero, amount=100):
    contact = _put(xero, "/Contacts", {"Contacts": [{"Name": "Credited Ltd"}]})["Contacts"][0]
    invoice = _put(
        xero,
        "/Invoices",
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact["ContactID"]},
                    "Status": "AUTHORISED",
                    "DueDate": "2026-03-01",
                    "LineAmountTypes": "NoTax",
                    "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": amount}],
                }
            ]
        },
    )["Invoices"][0]
    return contact, invoice


def _credit_note(xero, contact, amount, status="AUTHORISED"):
    body = {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact["ContactID"]},
        "Status": status,
        "LineAmountTypes": "NoTax",
        "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": amount}],
    }
    return _put(xero, "/CreditNotes", {"CreditNotes": [body]})["CreditNotes"][0]


def test_an_allocated_credit_note_reduces_the_invoice_and_the_contact_balance(xero):
    contact, invoice = _customer_with_invoice(xero, 100)
    credit = _credit_note(xero, contact, 30)
    assert credit["Total"] == 30.0 and credit["RemainingCredit"] == 30.0

    allocation = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 30, "Date": "2026-02-01"}
    _put(xero, f"/CreditNotes/{credit['CreditNoteID']}/Allocations", {"Allocations": [allocation]})

    read = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (read["AmountDue"], read["AmountCredited"], read["Status"]) == (70.0, 30.0, "AUTHORISED")
    assert read["CreditNotes"][0]["CreditNoteID"] == credit["CreditNoteID"]
    balances = xero.get(f"/Contacts/{contact['ContactID']}").json()["Contacts"][0]["Balances"]
    assert balances["AccountsReceivable"]["Outstanding"] == 70.0
    listed = xero.get("/CreditNotes").json()["CreditNotes"]
    assert listed[0]["Allocations"][0]["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert listed[0]["RemainingCredit"] == 0.0 and listed[0]["Status"] == "PAID"


def test_a_credit_note_covering_the_rest_pays_the_invoice_off(xero):
    contact, invoice = _customer_with_invoice(xero, 50)
    credit = _credit_note(xero, contact, 50)
    allocation = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 50}
    _put(xero, f"/CreditNotes/{credit['CreditNoteID']}/Allocations", allocation)
    read = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (read["AmountDue"], read["Status"]) == (0.0, "PAID")


@pytest.mark.parametrize(
    "amount, status, message",
    [
        (40, "AUTHORISED", "exceeds the remaining credit"),
        (10, "DRAFT", "Only an AUTHORISED credit note"),
        (0, "AUTHORISED", "greater than zero"),
        ("x", "AUTHORISED", "Amount must be a number"),
    ],
)
def test_allocations_xero_refuses_change_nothing(xero, amount, status, message):
    contact, invoice = _customer_with_invoice(xero, 100)
    credit = _credit_note(xero, contact, 30, status=status)
    allocation = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": amount}
    refused = _put(xero, f"/CreditNotes/{credit['CreditNoteID']}/Allocations", allocation, status=400)
    assert message in json.dumps(refused)
    read = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (read["AmountDue"], read["AmountCredited"]) == (100.0, 0.0)


def test_credit_notes_are_announced_by_creditnote_webhooks(
    xero, settings, django_capture_on_commit_callbacks
):
    settings.SANDBOX_WEBHOOK_AUTODELIVER = False
    webhooks.register_xero_webhook(xero.app.client_id, RECEIVER, categories="CREDITNOTE")
    contact, invoice = _customer_with_invoice(xero, 100)
    with django_capture_on_commit_callbacks(execute=True):
        credit = _credit_note(xero, contact, 20)
    allocation = {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 20}
    with django_capture_on_commit_callbacks(execute=True):
        _put(xero, f"/CreditNotes/{credit['CreditNoteID']}/Allocations", allocation)
    with responses.RequestsMock() as receiver:
        receiver.post(RECEIVER, status=200)
        webhooks.deliver_pending()
        events = [e for call in receiver.calls for e in json.loads(call.request.body)["events"]]
    assert [(e["eventCategory"], e["eventType"]) for e in events] == [
        ("CREDITNOTE", "CREATE"),
        ("CREDITNOTE", "UPDATE"),
    ]
    assert events[0]["resourceUrl"].endswith(f"/CreditNotes/{credit['CreditNoteID']}")
    assert events[0]["data"] == {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"}
    assert uuid.UUID(events[0]["resourceId"])
