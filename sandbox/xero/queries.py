"""List queries of the sandbox Xero: IDs, Statuses, where, order, paging, If-Modified-Since.

``where`` is parsed by a small tokenizer and recursive-descent parser into Django ``Q``
objects (never eval): comparisons ``Field == value`` (==, !=, >, >=, <, <=), string
methods ``Field.Contains("x")`` / ``StartsWith`` / ``EndsWith``, joined with
``&&``/``AND`` and ``||``/``OR`` and parentheses. Values: "strings", Guid("…"),
DateTime(y, m, d[, h, m, s]), numbers, true/false.
"""

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet

from sandbox.xero.models import Contact, CreditNote, Invoice, Payment

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


class QueryError(Exception):
    """A query Xero would answer with 400 (bad where, bad paging)."""


@dataclass(frozen=True)
class Resource:
    model: type
    fields: dict[str, str]  # Xero field name (lower case) -> ORM lookup path
    order_default: tuple[str, ...]
    id_field: str


CONTACT = Resource(
    Contact,
    {
        "contactid": "contact_id",
        "name": "name",
        "firstname": "first_name",
        "lastname": "last_name",
        "emailaddress": "email_address",
        "contactnumber": "contact_number",
        "accountnumber": "account_number",
        "contactstatus": "status",
        "updateddateutc": "updated_at",
    },
    ("name", "pk"),
    "contact_id",
)
INVOICE = Resource(
    Invoice,
    {
        "invoiceid": "invoice_id",
        "invoicenumber": "invoice_number",
        "reference": "reference",
        "status": "status",
        "type": "type",
        "date": "date",
        "duedate": "due_date",
        "contact.contactid": "contact__contact_id",
        "contactid": "contact__contact_id",
        "contact.name": "contact__name",
        "total": "total",
        "amountdue": "amount_due_value",
        "amountpaid": "amount_paid",
        "currencycode": "currency_code",
        "updateddateutc": "updated_at",
    },
    ("updated_at", "pk"),
    "invoice_id",
)
PAYMENT = Resource(
    Payment,
    {
        "paymentid": "payment_id",
        "invoice.invoiceid": "invoice__invoice_id",
        "invoice.invoicenumber": "invoice__invoice_number",
        "invoice.contact.contactid": "invoice__contact__contact_id",
        "status": "status",
        "date": "date",
        "amount": "amount",
        "reference": "reference",
        "paymenttype": "payment_type",
        "updateddateutc": "updated_at",
    },
    ("updated_at", "pk"),
    "payment_id",
)

CREDIT_NOTE = Resource(
    CreditNote,
    {
        "creditnoteid": "credit_note_id",
        "creditnotenumber": "credit_note_number",
        "reference": "reference",
        "status": "status",
        "type": "type",
        "date": "date",
        "contact.contactid": "contact__contact_id",
        "contact.name": "contact__name",
        "total": "total",
        "updateddateutc": "updated_at",
    },
    ("updated_at", "pk"),
    "credit_note_id",
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|>=|<=|>|<|&&|\|\||\(|\)|,|\.)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_LOOKUPS = {"==": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_METHODS = {"contains": "icontains", "startswith": "istartswith", "endswith": "iendswith"}


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(
                f"Unexpected character in where clause at {position}: {text[position : position + 10]!r}"
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, resource: Resource, tokens: list[tuple[str, str]]):
        self.resource, self.tokens, self.index = resource, tokens, 0

    def peek(self, offset=0):
        i = self.index + offset
        return self.tokens[i] if i < len(self.tokens) else (None, None)

    def take(self, kind=None, value=None):
        token = self.peek()
        if token[0] is None or (kind and token[0] != kind) or (value and token[1].lower() != value.lower()):
            raise QueryError(f"Expected {value or kind} in where clause, found {token[1]!r}")
        self.index += 1
        return token[1]

    def is_word(self, *words):
        kind, value = self.peek()
        return (kind == "op" and value in words) or (kind == "name" and value.upper() in words)

    def parse(self) -> Q:
        result = self.disjunction()
        if self.peek()[0] is not None:
            raise QueryError(f"Unexpected {self.peek()[1]!r} in where clause")
        return result

    def disjunction(self) -> Q:
        result = self.conjunction()
        while self.is_word("||", "OR"):
            self.index += 1
            result |= self.conjunction()
        return result

    def conjunction(self) -> Q:
        result = self.term()
        while self.is_word("&&", "AND"):
            self.index += 1
            result &= self.term()
        return result

    def term(self) -> Q:
        if self.is_word("("):
            self.index += 1
            result = self.disjunction()
            self.take("op", ")")
            return result
        parts = [self.take("name")]
        while self.peek() == ("op", "."):
            self.index += 1
            parts.append(self.take("name"))
        if parts[-1].lower() in _METHODS and self.peek() == ("op", "("):
            method = parts.pop().lower()
            self.take("op", "(")
            value = self.value()
            self.take("op", ")")
            return Q(**{f"{self.field(parts)}__{_METHODS[method]}": value})
        op = self.take("op")
        if op not in _LOOKUPS and op != "!=":
            raise QueryError(f"Unknown operator {op!r} in where clause")
        field, value = self.field(parts), self.value()
        if value is None:
            condition = Q(**{f"{field}__isnull": True})
        else:
            lookup = "iexact" if op == "==" and isinstance(value, str) else _LOOKUPS.get(op, "exact")
            condition = Q(**{f"{field}__{lookup}": value})
        return ~condition if op == "!=" else condition

    def field(self, parts: list[str]) -> str:
        name = ".".join(parts).lower()
        if name not in self.resource.fields:
            raise QueryError(f"The field {'.'.join(parts)} is not supported in where clauses")
        return self.resource.fields[name]

    def value(self):
        kind, text = self.peek()
        if kind == "string":
            self.index += 1
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            self.index += 1
            return float(text) if "." in text else int(text)
        if kind == "name":
            word = text.lower()
            self.index += 1
            if word in ("true", "false"):
                return word == "true"
            if word == "null":
                return None
            if word == "guid":
                self.take("op", "(")
                raw = self.take("string")[1:-1]
                self.take("op", ")")
                try:
                    return uuid.UUID(raw)
                except ValueError:
                    raise QueryError(f"{raw!r} is not a valid Guid") from None
            if word in ("datetime", "date"):
                self.take("op", "(")
                numbers = [int(self.take("number"))]
                while self.peek() == ("op", ","):
                    self.index += 1
                    numbers.append(int(self.take("number")))
                self.take("op", ")")
                try:
                    # Always aware: compared with DateTimeFields (UpdatedDateUTC) as well as dates.
                    return dt.datetime(*numbers, tzinfo=dt.UTC)
                except (TypeError, ValueError):
                    raise QueryError("DateTime needs a valid year, month and day") from None
        raise QueryError(f"Unexpected {text!r} in where clause")


def where(resource: Resource, text: str) -> Q:
    if "\x00" in text:  # no value can hold it (PostgreSQL refuses NUL in text)
        raise QueryError("The where clause contains a NUL character")
    return _Parser(resource, tokenize(text)).parse()


def _csv(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _uuids(value: str, name: str) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(part) for part in _csv(value)]
    except ValueError:
        raise QueryError(f"{name} must be a comma-separated list of identifiers") from None


def if_modified_since(value: str) -> dt.datetime:
    """HTTP-date or ISO 8601 (Xero accepts both; naive ISO means UTC)."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise QueryError("If-Modified-Since is not a valid date") from None
    if not moment.tzinfo:
        return moment.replace(tzinfo=dt.UTC)
    try:
        # In UTC: PostgreSQL refuses a displacement beyond ±15:59, which ISO 8601 text may carry.
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise QueryError("If-Modified-Since is not a valid date") from None


def order(resource: Resource, text: str) -> list[str]:
    if not text:
        return list(resource.order_default)
    result = []
    for part in _csv(text):
        words = part.split()
        name = words[0].lower()
        if name not in resource.fields or len(words) > 2:
            raise QueryError(f"Cannot order by {part!r}")
        descending = len(words) == 2 and words[1].upper() == "DESC"
        result.append(("-" if descending else "") + resource.fields[name])
    return [*result, "pk"]


def base_queryset(resource: Resource, organisation) -> QuerySet:
    # Through the organisation's own related manager: every row comes back knowing its organisation
    # (a contact's groups show its tenant), without a query a row.
    related = resource.model._meta.get_field("organisation").related_query_name()
    rows = getattr(organisation, related).all()
    if resource is INVOICE:
        # Payments and credit allocations are read for a whole page by representation.invoice_links
        # (prefetch_related builds a queryset per invoice: most of a 1,000-invoice page's time).
        rows = rows.select_related("contact")
        rows = rows.annotate(amount_due_value=F("total") - F("amount_paid") - F("amount_credited"))
    elif resource is CREDIT_NOTE:
        rows = rows.select_related("contact").prefetch_related("allocations__invoice")
    elif resource is PAYMENT:
        rows = rows.select_related("invoice__contact").annotate(
            payment_type=F("invoice__type")  # compared with ACCRECPAYMENT below
        )
    return rows


def filtered(resource: Resource, organisation, params, headers) -> QuerySet:
    """The rows a GET list asks for, in order, before paging."""
    every = params.lists() if hasattr(params, "lists") else ((k, [v]) for k, v in params.items())
    if any("\x00" in str(value) for _, values in every for value in values):
        raise QueryError("Query parameters cannot contain NUL characters")  # PostgreSQL cannot compare them
    rows = base_queryset(resource, organisation)
    if resource is CONTACT and params.get("includeArchived", "").lower() != "true":
        rows = rows.exclude(status=Contact.Status.ARCHIVED)
    if ids := params.get("IDs"):
        rows = rows.filter(**{f"{resource.id_field}__in": _uuids(ids, "IDs")})
    if resource is INVOICE:
        if statuses := _csv(params.get("Statuses", "")):
            rows = rows.filter(status__in=[s.upper() for s in statuses])
        if contact_ids := params.get("ContactIDs"):
            rows = rows.filter(contact__contact_id__in=_uuids(contact_ids, "ContactIDs"))
        if numbers := _csv(params.get("InvoiceNumbers", "")):
            rows = rows.filter(invoice_number__in=numbers)
    if search := params.get("searchTerm", "").strip():
        if resource is CONTACT:
            rows = rows.filter(
                Q(name__icontains=search)
                | Q(first_name__icontains=search)
                | Q(last_name__icontains=search)
                | Q(contact_number__icontains=search)
                | Q(email_address__icontains=search)
            )
        elif resource is INVOICE:
            rows = rows.filter(Q(invoice_number__icontains=search) | Q(reference__icontains=search))
    if text := params.get("where", "").strip():
        if resource is PAYMENT:
            text = re.sub(r'"(ACC(?:REC|PAY))PAYMENT"', r'"\1"', text, flags=re.IGNORECASE)
        try:
            rows = rows.filter(where(resource, text))
        except (ValidationError, ValueError, TypeError) as error:  # a value of the wrong kind for its field
            raise QueryError(f"Invalid value in where clause: {error}") from None
    if since := headers.get("If-Modified-Since"):
        rows = rows.filter(updated_at__gte=if_modified_since(since).replace(microsecond=0))
    return rows.order_by(*order(resource, params.get("order", "")))


def page(rows: QuerySet, params) -> tuple[list, dict]:
    """One page and Xero's pagination block; without ``page`` every row comes back."""
    try:
        size = int(params.get("pageSize") or DEFAULT_PAGE_SIZE)
        number = int(params.get("page") or 1)
    except ValueError:
        raise QueryError("page and pageSize must be whole numbers") from None
    if size < 1 or number < 1:
        raise QueryError("page and pageSize must be at least 1")
    size = min(size, MAX_PAGE_SIZE)
    count = rows.count()
    if "page" not in params and "pageSize" not in params:
        items = list(rows)
        return items, {"page": 1, "pageSize": max(count, 1), "pageCount": 1, "itemCount": count}
    start = (number - 1) * size
    # A page beyond the last is empty; never hand the database an offset past its integer range.
    items = list(rows[start : start + size]) if start < count else []
    return items, {"page": number, "pageSize": size, "pageCount": math.ceil(count / size), "itemCount": count}
