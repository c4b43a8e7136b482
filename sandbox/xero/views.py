"""HTTP surface of the sandbox Xero: identity (consent, token, revocation, connections) and accounting.

Views are thin: the call pipeline lives in ``guard``, rules in ``identity``/``accounting``,
shapes in ``representation`` and list filters in ``queries``.
"""

import base64
import binascii
import logging
import re
import uuid
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import clock, counters
from sandbox.xero import accounting, identity, queries, services
from sandbox.xero import representation as shape
from sandbox.xero.guard import SERVICE, json_body, problem, xero_call
from sandbox.xero.models import Connection, CreditNote, Organisation, Payment, XeroApp

log = logging.getLogger(__name__)

# --- identity --------------------------------------------------------------------------------


def _redirect_with(redirect_uri: str, **params) -> HttpResponseRedirect:
    separator = "&" if "?" in redirect_uri else "?"
    return HttpResponseRedirect(redirect_uri + separator + urlencode({k: v for k, v in params.items() if v}))


@require_http_methods(["GET", "POST"])
def authorize(request):
    """The consent page: pick organisations, approve or deny; then back to the app with a code."""
    params = request.GET if request.method == "GET" else request.POST
    app = XeroApp.objects.filter(client_id=params.get("client_id", "")).first()
    redirect_uri, state = params.get("redirect_uri", ""), params.get("state", "")
    if not app:
        return render(
            request, "sandbox_xero/authorize_error.html", {"error": "unauthorized_client"}, status=400
        )
    if redirect_uri not in app.redirect_uri_list:
        # Never redirect to an unregistered address: show the error instead.
        return render(
            request, "sandbox_xero/authorize_error.html", {"error": "invalid_redirect_uri"}, status=400
        )
    if params.get("response_type") != "code":
        return _redirect_with(redirect_uri, error="unsupported_response_type", state=state)
    scope = params.get("scope", "")
    if not identity.scope_is_valid(scope):
        return _redirect_with(redirect_uri, error="invalid_scope", state=state)
    challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
    if challenge and method not in ("S256", "plain", ""):
        return _redirect_with(redirect_uri, error="invalid_request", state=state)
    organisations = Organisation.objects.order_by("name")
    if request.method == "GET":
        context = {
            "app": app,
            "organisations": organisations,
            "params": params.items(),
            "scope": scope.split(),
        }
        return render(request, "sandbox_xero/authorize.html", context)
    if request.POST.get("action") != "allow":
        return _redirect_with(redirect_uri, error="access_denied", state=state)
    chosen = list(organisations.filter(tenant_id__in=request.POST.getlist("tenant")))
    if not chosen:
        context = {
            "app": app,
            "organisations": organisations,
            "params": params.items(),
            "scope": scope.split(),
            "error": "Choose at least one organisation.",
        }
        return render(request, "sandbox_xero/authorize.html", context, status=400)
    with transaction.atomic():
        grant = services.connect(app, chosen, scope)
        code = identity.issue_code(
            grant, redirect_uri, challenge, method or ("plain" if challenge else ""), params.get("nonce", "")
        )
    return _redirect_with(redirect_uri, code=code.code, state=state)


def _client_credentials(request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, secret
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


def _oauth_error(error: identity.OAuthError) -> JsonResponse:
    body = {"error": error.error}
    return JsonResponse(body, status=error.status)


@csrf_exempt
@require_http_methods(["POST"])
def token(request):
    """POST /connect/token: authorization_code and refresh_token grants."""
    try:
        app = identity.check_client(*_client_credentials(request))
        grant_type = request.POST.get("grant_type")
        if grant_type == "authorization_code":
            token_set = identity.exchange_code(
                app,
                request.POST.get("code", ""),
                request.POST.get("redirect_uri", ""),
                request.POST.get("code_verifier", ""),
            )
        elif grant_type == "refresh_token":
            token_set = identity.refresh(app, request.POST.get("refresh_token", ""))
        else:
            raise identity.OAuthError("unsupported_grant_type")
    except identity.OAuthError as error:
        counters.count_call(SERVICE, "", "POST /connect/token", error.status)
        return _oauth_error(error)
    counters.count_call(SERVICE, "", "POST /connect/token", 200)
    response = JsonResponse(token_set.as_response())
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_http_methods(["POST"])
def revocation(request):
    try:
        app = identity.check_client(*_client_credentials(request))
    except identity.OAuthError as error:
        return _oauth_error(error)
    identity.revoke(app, request.POST.get("token", ""))
    counters.count_call(SERVICE, "", "POST /connect/revocation", 200)
    return HttpResponse(status=200)


def _connection(row: Connection) -> dict:
    return {
        "id": str(row.id),
        "authEventId": str(row.grant.auth_event_id),
        "tenantId": str(row.organisation.tenant_id),
        "tenantType": "ORGANISATION",
        "tenantName": row.organisation.name,
        "createdDateUtc": row.created_at.replace(tzinfo=None).isoformat(timespec="microseconds") + "0",
        "updatedDateUtc": row.updated_at.replace(tzinfo=None).isoformat(timespec="microseconds") + "0",
    }


def _list_connections(request, ctx):
    rows = Connection.objects.filter(grant=ctx.grant, deleted_at__isnull=True).select_related(
        "grant", "organisation"
    )
    if event := request.GET.get("authEventId"):
        rows = rows.filter(grant__auth_event_id=event) if _is_uuid(event) else rows.none()
    return JsonResponse([_connection(row) for row in rows.order_by("created_at")], safe=False)


def _delete_connection(request, ctx, connection_id):
    updated = Connection.objects.filter(grant=ctx.grant, id=connection_id, deleted_at__isnull=True).update(
        deleted_at=clock.now()
    )
    return HttpResponse(status=204) if updated else problem(404, "Not Found", "Connection not found")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- accounting -----------------------------------------------------------------------------

RESOURCES = {
    "Contacts": (queries.CONTACT, "contact_id"),
    "Invoices": (queries.INVOICE, "invoice_id"),
    "Payments": (queries.PAYMENT, "payment_id"),
    "CreditNotes": (queries.CREDIT_NOTE, "credit_note_id"),
}


# The record identifiers Xero's ValidationException element carries (the spec's Element schema: each a
# uuid string). Xero echoes the element as it read it, so an identifier it could not read is left out.
ELEMENT_IDS = (
    "BatchPaymentID",
    "BankTransactionID",
    "CreditNoteID",
    "ContactID",
    "InvoiceID",
    "ItemID",
    "PurchaseOrderID",
)
_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _as_read(element) -> dict:
    """A refused element as Xero echoes it: as sent, less the identifiers that are not uuids."""
    return {
        key: value
        for key, value in (element if isinstance(element, dict) else {}).items()
        if key not in ELEMENT_IDS or (isinstance(value, str) and _UUID_TEXT.match(value))
    }


def validation_error(element: dict, messages: list[str]) -> JsonResponse:
    """Xero's 400 ValidationException: the refused element as sent, with its messages."""
    element = {**_as_read(element), "ValidationErrors": [{"Message": m} for m in messages]}
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [element],
    }
    return JsonResponse(body, status=400)


def _render(key: str, rows: list, summary: bool = False) -> list[dict]:
    if key == "Contacts":
        return shape.contacts(rows, summary=summary)
    if key == "Invoices":
        customers = shape.customer_ids([row.contact for row in rows])
        links = None if summary else shape.invoice_links(rows)
        return [shape.invoice(row, summary=summary, customers=customers, links=links) for row in rows]
    if key == "CreditNotes":
        return [shape.credit_note(row, summary=summary) for row in rows]
    return [shape.payment(row) for row in rows]


def _list(request, ctx, key: str):
    resource, _ = RESOURCES[key]
    try:
        rows, pagination = queries.page(
            queries.filtered(resource, ctx.organisation, request.GET, request.headers), request.GET
        )
    except queries.QueryError as error:
        return JsonResponse(
            {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(error)}, status=400
        )
    summary = request.GET.get("summaryOnly", "").lower() == "true"
    return JsonResponse(shape.envelope(ctx.app.name, key, _render(key, rows, summary), pagination))


def _one(ctx, key: str, record_id):
    resource, lookup = RESOURCES[key]
    row = queries.base_queryset(resource, ctx.organisation).filter(**{lookup: record_id}).first()
    if not row:
        return problem(404, "Not Found", "The resource you're looking for cannot be found")
    return JsonResponse(shape.envelope(ctx.app.name, key, _render(key, [row])))


def _elements(body, key: str):
    """The request's records: ``{"Contacts": [...]}`` or a single object, as Xero accepts both."""
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return body[key]
    if isinstance(body, dict) and body and key not in body:
        return [body]
    return None


def _write(request, ctx, key: str, record_id=None, create_only=False):
    elements = _elements(json_body(request), key)
    if not elements:
        return JsonResponse(
            {
                "ErrorNumber": 14,
                "Type": "PostDataInvalidException",
                "Message": f"The request body must contain {key}",
            },
            status=400,
        )
    if request.GET.get("summarizeErrors", "true").lower() == "false":
        return _write_each(ctx, key, elements, record_id, create_only)
    try:
        # The answer is rendered inside the transaction: a write and its answer stand or fall together.
        with transaction.atomic():
            written = []
            for element in elements:
                current = element
                if not isinstance(element, dict):
                    raise accounting.ValidationError("Each element must be an object")
                written.append(_write_one(ctx.organisation, key, element, record_id, create_only))
            rows = _refetch(ctx.organisation, key, written)
            return JsonResponse(shape.envelope(ctx.app.name, key, _render(key, rows)))
    except accounting.ValidationError as error:
        return validation_error(current, error.messages)


def _write_each(ctx, key, elements, record_id, create_only):
    """summarizeErrors=false: save what is valid; refused elements come back marked ERROR (still 200)."""
    results = []
    for element in elements:
        try:
            with transaction.atomic():
                if not isinstance(element, dict):
                    raise accounting.ValidationError("Each element must be an object")
                row = _write_one(ctx.organisation, key, element, record_id, create_only)
                rendered = _render(key, _refetch(ctx.organisation, key, [row]))[0]
            results.append({**rendered, "StatusAttributeString": "OK"})
        except accounting.ValidationError as error:
            # Inside a 200 answer the refused element is read as the record type: the sandbox returns
            # its identifier only, as the rest as sent may hold values the record's schema cannot.
            results.append(
                {
                    **{k: v for k, v in _as_read(element).items() if k in ELEMENT_IDS},
                    "StatusAttributeString": "ERROR",
                    "HasValidationErrors": True,
                    "ValidationErrors": [{"Message": m} for m in error.messages],
                }
            )
    return JsonResponse(shape.envelope(ctx.app.name, key, results))


def _write_one(organisation, key, element, record_id, create_only):
    if key == "Contacts":
        if create_only and not record_id:
            if element.get("ContactID"):
                raise accounting.ValidationError("PUT creates contacts: use POST to update one")
            return accounting.create_contact(organisation, element)
        return accounting.upsert_contact(organisation, element, record_id)[0]
    if key == "Invoices":
        if create_only and not record_id:
            return accounting.create_invoice(organisation, element)
        return accounting.upsert_invoice(organisation, element, record_id)[0]
    if key == "CreditNotes":
        if record_id or element.get("CreditNoteID"):
            raise accounting.ValidationError("Changing a credit note is not emulated: create a new one")
        return accounting.create_credit_note(organisation, element)
    return accounting.create_payment(organisation, element)


def _refetch(organisation, key, written):
    resource, _ = RESOURCES[key]
    rows = {
        row.pk: row
        for row in queries.base_queryset(resource, organisation).filter(pk__in=[w.pk for w in written])
    }
    return [rows[w.pk] for w in written]


def _delete_payment(request, ctx, record_id):
    """POST /Payments/{id}: the only change Xero allows to a payment is deleting it."""
    payment = Payment.objects.filter(organisation=ctx.organisation, payment_id=record_id).first()
    if not payment:
        return problem(404, "Not Found", "The resource you're looking for cannot be found")
    body = json_body(request)
    element = (_elements(body, "Payments") or [body])[0]
    try:
        with transaction.atomic():
            accounting.delete_payment(payment, element if isinstance(element, dict) else {})
    except accounting.ValidationError as error:
        return validation_error(element, error.messages)
    return JsonResponse(
        shape.envelope(
            ctx.app.name, "Payments", _render("Payments", _refetch(ctx.organisation, "Payments", [payment]))
        )
    )


def _dispatch(handlers: dict):
    """One URL, several methods: route to the guarded handler, 405 otherwise."""

    @csrf_exempt
    def view(request, **kwargs):
        handler = handlers.get(request.method)
        if not handler:
            response = HttpResponse(status=405)
            response["Allow"] = ", ".join(handlers)
            return response
        try:
            return handler(request, **kwargs)
        except Exception:
            # A defect of the emulator, never the caller's: answer in Xero's shape (writes rolled back).
            log.exception("sandbox Xero failed on %s %s", request.method, request.path)
            return problem(500, "Internal Server Error", "An error occurred in the sandbox")

    return view


def _allocate(request, ctx, record_id):
    """PUT /CreditNotes/{id}/Allocations: apply the credit to invoices (each reduces AmountDue)."""
    credit_note = CreditNote.objects.filter(organisation=ctx.organisation, credit_note_id=record_id).first()
    if not credit_note:
        return problem(404, "Not Found", "The resource you're looking for cannot be found")
    elements = _elements(json_body(request), "Allocations")
    if not elements:
        return validation_error({}, ["The request body must contain Allocations"])
    try:
        with transaction.atomic():
            allocations = []
            for element in elements:
                current = element
                if not isinstance(element, dict):
                    raise accounting.ValidationError("Each allocation must be an object")
                allocations.append(accounting.allocate_credit_note(credit_note, element))
                credit_note.refresh_from_db()
    except accounting.ValidationError as error:
        return validation_error(current, error.messages)
    items = [
        {
            "AllocationID": str(a.allocation_id),
            "Amount": float(a.amount),
            "Date": shape.ms_date(a.date),
            "Invoice": {"InvoiceID": str(a.invoice.invoice_id), "InvoiceNumber": a.invoice.invoice_number},
            "CreditNote": {"CreditNoteID": str(credit_note.credit_note_id)},
        }
        for a in allocations
    ]
    return JsonResponse(shape.envelope(ctx.app.name, "Allocations", items))


def endpoint(route: str, needs_tenant: bool = True, **handlers):
    """One URL: each method's handler behind the Xero call pipeline (counted as "<METHOD> <route>")."""
    return _dispatch(
        {
            method: xero_call(f"{method} {route}", needs_tenant=needs_tenant)(handler)
            for method, handler in handlers.items()
        }
    )


def resource_views(key: str, update_one=None):
    """The collection (GET list, PUT create, POST create-or-update) and item (GET, POST) views of a
    resource; ``update_one`` replaces the item POST where Xero allows less (payments: delete only)."""
    resource, lookup = RESOURCES[key]

    def list_(request, ctx):
        return _list(request, ctx, key)

    def create(request, ctx):
        return _write(request, ctx, key, create_only=True)

    def create_or_update(request, ctx):
        return _write(request, ctx, key)

    def get(request, ctx, record_id):
        return _one(ctx, key, record_id)

    def update(request, ctx, record_id):
        if not queries.base_queryset(resource, ctx.organisation).filter(**{lookup: record_id}).exists():
            return problem(404, "Not Found", "The resource you're looking for cannot be found")
        return _write(request, ctx, key, record_id=record_id)

    collection = endpoint(f"/{key}", GET=list_, PUT=create, POST=create_or_update)
    item = endpoint(f"/{key}/{{id}}", GET=get, POST=update_one or update)
    return collection, item


def _organisation(request, ctx):
    """GET /Organisation: the tenant's settings, its Timezone among them (scope accounting.settings)."""
    return JsonResponse(shape.envelope(ctx.app.name, "Organisations", [shape.organisation(ctx.organisation)]))


connections = endpoint("/connections", needs_tenant=False, GET=_list_connections)
organisation = endpoint("/Organisation", GET=_organisation)
connection = endpoint("/connections/{id}", needs_tenant=False, DELETE=_delete_connection)
contacts, contact = resource_views("Contacts")
invoices, invoice = resource_views("Invoices")
payments, payment = resource_views("Payments", update_one=_delete_payment)
credit_notes, credit_note = resource_views("CreditNotes")
credit_note_allocations = endpoint("/CreditNotes/{id}/Allocations", PUT=_allocate)
