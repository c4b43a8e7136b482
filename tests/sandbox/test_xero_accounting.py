"""Sandbox Xero accounting: reads with Xero's filters and paging, writes with Xero's rules, balances."""

import datetime as dt
import re

import pytest

from sandbox import clock
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")


def put(xero, path, body):
    response = xero.send("PUT", path, body)
    assert response.status_code == 200, response.content
    return response.json()


def make_contact(xero, name, **fields):
    return put(xero, "/Contacts", {"Contacts": [{"Name": name, **fields}]})["Contacts"][0]


def make_invoice(
    xero, contact_id, amount=100, status="AUTHORISED", date="2026-01-10", due="2026-02-10", **extra
):
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": date,
        "DueDate": due,
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}],
        **extra,
    }
    return put(xero, "/Invoices", {"Invoices": [body]})["Invoices"][0]


def pay(xero, invoice_id, amount, date="2026-01-20"):
    body = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Date": date, "Amount": amount}
    return put(xero, "/Payments", {"Payments": [body]})["Payments"][0]


def test_envelope_dates_and_single_record(xero):
    created = make_contact(xero, "Ridgeway University", EmailAddress="ap@ridgeway.example")
    assert MS_DATE.match(created["UpdatedDateUTC"])
    response = xero.get(f"/Contacts/{created['ContactID']}")
    body = response.json()
    assert response.status_code == 200
    assert body["Status"] == "OK" and MS_DATE.match(body["DateTimeUTC"]) and body["ProviderName"]
    assert [c["Name"] for c in body["Contacts"]] == ["Ridgeway University"]
    assert {p["PhoneType"] for p in body["Contacts"][0]["Phones"]} == {"DDI", "DEFAULT", "FAX", "MOBILE"}


def test_unknown_record_is_404(xero):
    assert xero.get("/Contacts/00000000-0000-0000-0000-000000000001").status_code == 404


def test_records_are_per_organisation(xero, xero_orgs):
    make_contact(xero, "Only In Acme")
    other = xero.client.get(
        "/sandbox/xero/api/api.xro/2.0/Contacts", **xero.headers(tenant_id=str(xero_orgs[1].tenant_id))
    )
    assert other.status_code == 200 and other.json()["Contacts"] == []


def test_paging_with_page_size_and_the_pagination_block(xero):
    for index in range(7):
        make_contact(xero, f"Customer {index:02d}")
    first = xero.get("/Contacts", {"page": 1, "pageSize": 3}).json()
    assert first["pagination"] == {"page": 1, "pageSize": 3, "pageCount": 3, "itemCount": 7}
    names = []
    for number in (1, 2, 3):
        names += [
            c["Name"] for c in xero.get("/Contacts", {"page": number, "pageSize": 3}).json()["Contacts"]
        ]
    assert names == [f"Customer {i:02d}" for i in range(7)]
    capped = xero.get("/Contacts", {"page": 1, "pageSize": 5000}).json()["pagination"]
    assert capped["pageSize"] == 1000
    default = xero.get("/Contacts", {"page": 1}).json()["pagination"]
    assert default["pageSize"] == 100


def test_ids_where_and_include_archived(xero):
    a = make_contact(xero, "Alpha", EmailAddress="a@example.com")
    b = make_contact(xero, "Bravo", EmailAddress="b@example.com")
    make_contact(xero, "Charlie")
    listed = xero.get("/Contacts", {"IDs": f"{a['ContactID']},{b['ContactID']}"}).json()["Contacts"]
    assert {c["Name"] for c in listed} == {"Alpha", "Bravo"}
    by_email = xero.get("/Contacts", {"where": 'EmailAddress=="b@example.com"'}).json()["Contacts"]
    assert [c["Name"] for c in by_email] == ["Bravo"]
    by_name = xero.get("/Contacts", {"where": 'Name=="alpha" || Name=="Charlie"'}).json()["Contacts"]
    assert [c["Name"] for c in by_name] == ["Alpha", "Charlie"]
    by_id = xero.get("/Contacts", {"where": f'ContactID==Guid("{a["ContactID"]}")'}).json()["Contacts"]
    assert [c["Name"] for c in by_id] == ["Alpha"]

    archived = xero.send("POST", f"/Contacts/{a['ContactID']}", {"Contacts": [{"ContactStatus": "ARCHIVED"}]})
    assert archived.json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"
    assert "Alpha" not in [c["Name"] for c in xero.get("/Contacts").json()["Contacts"]]
    assert "Alpha" in [
        c["Name"] for c in xero.get("/Contacts", {"includeArchived": "true"}).json()["Contacts"]
    ]
    assert xero.get(f"/Contacts/{a['ContactID']}").status_code == 200


def test_bad_where_is_a_400_not_a_crash(xero):
    response = xero.get("/Contacts", {"where": 'Name=="x" && import os'})
    assert response.status_code == 400
    assert xero.get("/Contacts", {"where": 'Secret=="x"'}).status_code == 400


def test_invoice_filters_statuses_contacts_numbers_dates(xero):
    acme = make_contact(xero, "Acme Customer")["ContactID"]
    beta = make_contact(xero, "Beta Customer")["ContactID"]
    draft = make_invoice(xero, acme, status="DRAFT", date="2026-01-05")
    auth = make_invoice(xero, acme, date="2026-03-01", due="2026-03-31")
    other = make_invoice(xero, beta, date="2026-02-01")

    def numbers(**params):
        return {i["InvoiceNumber"] for i in xero.get("/Invoices", params).json()["Invoices"]}

    assert numbers(Statuses="AUTHORISED") == {auth["InvoiceNumber"], other["InvoiceNumber"]}
    assert numbers(ContactIDs=acme) == {draft["InvoiceNumber"], auth["InvoiceNumber"]}
    assert numbers(InvoiceNumbers=other["InvoiceNumber"]) == {other["InvoiceNumber"]}
    assert numbers(where=f'Contact.ContactID==Guid("{beta}")') == {other["InvoiceNumber"]}
    assert numbers(where='Status=="AUTHORISED" && Date>=DateTime(2026,02,15)') == {auth["InvoiceNumber"]}
    assert numbers(where='Type=="ACCREC" AND Date<DateTime(2026, 1, 31)') == {draft["InvoiceNumber"]}


def test_invoice_totals_tax_and_numbering(xero):
    contact = make_contact(xero, "Taxed Ltd")["ContactID"]
    invoice = make_invoice(xero, contact, amount=200)
    assert invoice["SubTotal"] == 200.0 and invoice["TotalTax"] == 30.0 and invoice["Total"] == 230.0
    assert invoice["AmountDue"] == 230.0 and invoice["AmountPaid"] == 0.0
    assert re.match(r"^INV-\d{4}$", invoice["InvoiceNumber"])
    assert MS_DATE.match(invoice["Date"]) and invoice["DateString"] == "2026-01-10T00:00:00"
    inclusive = make_invoice(xero, contact, amount=115, LineAmountTypes="Inclusive")
    assert inclusive["Total"] == 115.0 and inclusive["TotalTax"] == 15.0


def test_payments_pay_invoices_and_deleting_reverts(xero):
    contact = make_contact(xero, "Payer Ltd")["ContactID"]
    invoice = make_invoice(xero, contact, amount=100)  # 115.00 with tax
    first = pay(xero, invoice["InvoiceID"], 15)
    part = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert part["AmountPaid"] == 15.0 and part["AmountDue"] == 100.0 and part["Status"] == "AUTHORISED"
    second = pay(xero, invoice["InvoiceID"], 100)
    paid = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert paid["Status"] == "PAID" and paid["AmountDue"] == 0.0 and "FullyPaidOnDate" in paid
    assert {p["PaymentID"] for p in paid["Payments"]} == {first["PaymentID"], second["PaymentID"]}

    deleted = xero.send("POST", f"/Payments/{second['PaymentID']}", {"Status": "DELETED"})
    assert deleted.status_code == 200 and deleted.json()["Payments"][0]["Status"] == "DELETED"
    back = xero.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert back["Status"] == "AUTHORISED" and back["AmountDue"] == 100.0

    by_invoice = xero.get("/Payments", {"where": f'Invoice.InvoiceID==Guid("{invoice["InvoiceID"]}")'}).json()
    assert {p["PaymentID"] for p in by_invoice["Payments"]} == {first["PaymentID"], second["PaymentID"]}
    live = xero.get("/Payments", {"where": 'Status=="AUTHORISED"'}).json()["Payments"]
    assert [p["PaymentID"] for p in live] == [first["PaymentID"]]


def test_validation_errors_in_xero_shape(xero):
    contact = make_contact(xero, "Strict Ltd")["ContactID"]
    duplicate = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "strict ltd"}]})
    assert duplicate.status_code == 400
    body = duplicate.json()
    assert body["Type"] == "ValidationException" and body["ErrorNumber"] == 10
    assert "already assigned" in body["Elements"][0]["ValidationErrors"][0]["Message"]

    invoice = make_invoice(xero, contact, amount=10)
    too_much = xero.send(
        "PUT",
        "/Payments",
        {
            "Payments": [
                {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 50}
            ]
        },
    )
    assert too_much.status_code == 400
    assert "exceeds" in too_much.json()["Elements"][0]["ValidationErrors"][0]["Message"]

    draft = make_invoice(xero, contact, status="DRAFT")
    on_draft = xero.send(
        "PUT",
        "/Payments",
        {
            "Payments": [
                {"Invoice": {"InvoiceID": draft["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 1}
            ]
        },
    )
    assert on_draft.status_code == 400
    no_due = xero.send(
        "PUT",
        "/Invoices",
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact},
                    "Status": "AUTHORISED",
                    "LineItems": [{"UnitAmount": 1}],
                }
            ]
        },
    )
    assert no_due.status_code == 400


def test_a_failing_element_writes_nothing(xero):
    response = xero.send("PUT", "/Contacts", {"Contacts": [{"Name": "Good One"}, {"Name": ""}]})
    assert response.status_code == 400
    assert xero.get("/Contacts", {"where": 'Name=="Good One"'}).json()["Contacts"] == []


def test_balances_come_from_authorised_invoices_and_payments(xero):
    clock_today = clock.now().date()
    contact = make_contact(xero, "Balance Ltd")["ContactID"]
    overdue = make_invoice(
        xero,
        contact,
        amount=100,
        date=(clock_today - dt.timedelta(days=40)).isoformat(),
        due=(clock_today - dt.timedelta(days=10)).isoformat(),
    )  # 115
    make_invoice(
        xero,
        contact,
        amount=200,
        date=clock_today.isoformat(),
        due=(clock_today + dt.timedelta(days=30)).isoformat(),
    )  # 230, not yet due
    make_invoice(xero, contact, amount=1000, status="DRAFT")  # drafts are not receivables
    pay(xero, overdue["InvoiceID"], 15, date=clock_today.isoformat())
    balances = xero.get(f"/Contacts/{contact}").json()["Contacts"][0]["Balances"]["AccountsReceivable"]
    assert balances == {"Outstanding": 330.0, "Overdue": 100.0}
    summary = xero.get("/Contacts", {"summaryOnly": "true"}).json()["Contacts"][0]
    assert "Balances" not in summary and summary["Name"] == "Balance Ltd"


def test_if_modified_since_returns_what_changed_since(xero):
    old = make_contact(xero, "Old Co")
    clock.advance(120)
    since = clock.now()
    clock.advance(5)
    new = make_contact(xero, "New Co")
    header = since.strftime("%a, %d %b %Y %H:%M:%S GMT")
    changed = xero.get("/Contacts", HTTP_IF_MODIFIED_SINCE=header).json()["Contacts"]
    assert [c["ContactID"] for c in changed] == [new["ContactID"]]
    clock.advance(5)
    xero.send("POST", f"/Contacts/{old['ContactID']}", {"Contacts": [{"EmailAddress": "new@old.example"}]})
    iso = since.strftime("%Y-%m-%dT%H:%M:%S")
    changed = xero.get("/Contacts", HTTP_IF_MODIFIED_SINCE=iso).json()["Contacts"]
    assert {c["ContactID"] for c in changed} == {old["ContactID"], new["ContactID"]}


def test_post_contacts_updates_by_id_and_moves_updated_date(xero):
    created = make_contact(xero, "Mover Ltd")
    clock.advance(10)
    updated = xero.send(
        "POST", "/Contacts", {"Contacts": [{"ContactID": created["ContactID"], "Name": "Mover Ltd 2"}]}
    )
    body = updated.json()["Contacts"][0]
    assert body["ContactID"] == created["ContactID"] and body["Name"] == "Mover Ltd 2"
    assert body["UpdatedDateUTC"] != created["UpdatedDateUTC"]


def test_every_write_is_announced_to_the_webhook_outbox(
    xero, monkeypatch, django_capture_on_commit_callbacks
):
    from sandbox import webhooks

    events = []
    monkeypatch.setattr(webhooks, "emit_xero_event", lambda *args, **kw: events.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        contact = make_contact(xero, "Hooked Ltd")["ContactID"]
        xero.send("POST", f"/Contacts/{contact}", {"Contacts": [{"EmailAddress": "x@hooked.example"}]})
        invoice = make_invoice(xero, contact)["InvoiceID"]
        payment = pay(xero, invoice, 10)["PaymentID"]
        xero.send("POST", f"/Payments/{payment}", {"Status": "DELETED"})
    tenant = xero.tenant_id
    assert events == [
        (tenant, "CONTACT", "CREATE", contact),
        (tenant, "CONTACT", "UPDATE", contact),
        (tenant, "INVOICE", "CREATE", invoice),
        (tenant, "PAYMENT", "CREATE", payment),
        (tenant, "INVOICE", "UPDATE", invoice),
        (tenant, "PAYMENT", "UPDATE", payment),
        (tenant, "INVOICE", "UPDATE", invoice),
    ]


def test_demo_data_and_seed_command(db, capsys):
    from django.core.management import call_command

    from sandbox.xero import services
    from sandbox.xero.models import Invoice, Organisation

    call_command("sandbox_xero_seed")
    out = capsys.readouterr().out
    assert f"XERO_CLIENT_ID={services.DEMO_CLIENT_ID}" in out
    organisations = Organisation.objects.filter(name__in=services.DEMO_ORGANISATIONS)
    assert organisations.count() == 2
    statuses = set(Invoice.objects.filter(organisation=organisations[0]).values_list("status", flat=True))
    assert {"AUTHORISED", "PAID", "DRAFT"} <= statuses
    call_command("sandbox_xero_seed")  # idempotent
    assert Organisation.objects.filter(name__in=services.DEMO_ORGANISATIONS).count() == 2


def test_connected_client_ids_lists_live_connections(xero, xero_orgs):
    from sandbox.xero import services

    assert services.connected_client_ids(xero_orgs[0].tenant_id) == [xero.app.client_id]
    assert services.connected_client_ids("00000000-0000-0000-0000-000000000000") == []


def test_activity_command_writes_through_the_api_rules(
    db, capsys, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from sandbox import webhooks
    from sandbox.xero.models import Contact, Invoice, Organisation, Payment

    events = []
    monkeypatch.setattr(webhooks, "emit_xero_event", lambda *args, **kw: events.append(args[1:3]))
    call_command("sandbox_xero_seed")
    org = Organisation.objects.get(name="Demo Company (NZ)")
    before = (
        Contact.objects.filter(organisation=org).count(),
        Invoice.objects.filter(organisation=org).count(),
        Payment.objects.filter(organisation=org).count(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sandbox_xero_activity", count=12, interval=0, seed=7)
    after = (
        Contact.objects.filter(organisation=org).count(),
        Invoice.objects.filter(organisation=org).count(),
        Payment.objects.filter(organisation=org).count(),
    )
    assert sum(after) - sum(before) == 12
    assert len(capsys.readouterr().out.strip().splitlines()) >= 12
    assert ("CONTACT", "CREATE") in events or ("INVOICE", "CREATE") in events
    assert all(invoice.total == invoice.sub_total + invoice.total_tax for invoice in Invoice.objects.all())


def test_summarize_errors_false_saves_the_valid_elements(xero):
    response = xero.send(
        "PUT", "/Contacts?summarizeErrors=false", {"Contacts": [{"Name": "Kept Ltd"}, {"Name": ""}]}
    )
    assert response.status_code == 200
    first, second = response.json()["Contacts"]
    assert first["StatusAttributeString"] == "OK" and first["ContactID"]
    assert second["StatusAttributeString"] == "ERROR" and second["ValidationErrors"]
    assert [c["Name"] for c in xero.get("/Contacts").json()["Contacts"]] == ["Kept Ltd"]


def test_invoice_status_rules_void_delete_and_paid_locks(xero):
    contact = make_contact(xero, "Status Ltd")["ContactID"]
    draft = make_invoice(xero, contact, status="DRAFT")
    deleted = xero.send("POST", f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "DELETED"}]})
    assert deleted.status_code == 200 and deleted.json()["Invoices"][0]["Status"] == "DELETED"

    authorised = make_invoice(xero, contact, amount=10)
    assert xero.send("POST", f"/Invoices/{authorised['InvoiceID']}", {"Status": "DELETED"}).status_code == 400
    pay(xero, authorised["InvoiceID"], 5)
    refused = xero.send("POST", f"/Invoices/{authorised['InvoiceID']}", {"Status": "VOIDED"})
    assert refused.status_code == 400
    assert "payments" in refused.json()["Elements"][0]["ValidationErrors"][0]["Message"]

    other = make_invoice(xero, contact, amount=10)
    voided = xero.send("POST", f"/Invoices/{other['InvoiceID']}", {"Status": "VOIDED"})
    assert voided.status_code == 200 and voided.json()["Invoices"][0]["Status"] == "VOIDED"
    voided_list = xero.get("/Invoices", {"Statuses": "VOIDED,DELETED"}).json()["Invoices"]
    assert {i["InvoiceID"] for i in voided_list} == {draft["InvoiceID"], other["InvoiceID"]}


def test_idempotency_key_makes_a_retried_write_happen_once(xero):
    body = {"Contacts": [{"Name": "Once Ltd"}]}
    first = xero.send("PUT", "/Contacts", body, HTTP_IDEMPOTENCY_KEY="k-1")
    retry = xero.send("PUT", "/Contacts", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 200
    assert retry.json()["Contacts"][0]["ContactID"] == first.json()["Contacts"][0]["ContactID"]
    assert [c["Name"] for c in xero.get("/Contacts").json()["Contacts"]] == ["Once Ltd"]
    # Without a key (or with another one) the same body is a new write: here a duplicate name.
    assert xero.send("PUT", "/Contacts", body, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 400
    assert xero.send("PUT", "/Contacts", body, HTTP_IDEMPOTENCY_KEY="x" * 129).status_code == 400
