"""Xero Accounting API client: ``xero-tenant-id`` on every call, per-tenant shared limits."""

import datetime as dt

from django.conf import settings

from connector.clients.http import ApiClient, TokenProvider, retry_after_seconds
from connector.errors import BudgetExhausted
from connector.limits.ratelimit import Limiter, XeroLimiter

_DEFAULT = object()


class XeroClient(ApiClient):
    service = "xero"

    def __init__(
        self, tenant_id: str, token_provider: TokenProvider, base_url: str | None = None, limiter=_DEFAULT
    ):
        limiter_: Limiter | None = XeroLimiter(tenant_id) if limiter is _DEFAULT else limiter
        super().__init__(base_url or settings.XERO_API_URL, limiter_)
        self.tenant_id = str(tenant_id)
        self.token_provider = token_provider

    def auth_headers(self):
        token = self.token_provider.get_token()
        return {"Authorization": f"Bearer {token}", "xero-tenant-id": self.tenant_id}

    def refresh_auth(self):
        self.token_provider.on_unauthorized()
        return True

    def observe(self, response):
        for header, kind in (("X-MinLimit-Remaining", "minute"), ("X-DayLimit-Remaining", "day")):
            value = response.headers.get(header)
            if value is not None and value.isdigit():
                self.limiter.observe_remaining(kind, int(value))

    def on_429(self, response):
        if response.headers.get("X-Rate-Limit-Problem", "").lower() == "day":
            resets_at = self.limiter.exhaust("day")
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait:
                resets_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
            raise BudgetExhausted(resets_at, f"Xero day limit reached for tenant {self.tenant_id}")

    def error_message(self, response):
        try:
            body = response.json()
        except ValueError:
            return response.text[:300]
        messages = [
            error.get("Message", "")
            for element in body.get("Elements") or []
            for error in element.get("ValidationErrors") or []
        ]
        return (
            "; ".join(m for m in messages if m)
            or body.get("Message")
            or body.get("Detail")
            or str(body)[:300]
        )

    # --- endpoints ----------------------------------------------------------
    @staticmethod
    def _params(**values) -> dict:
        params = {}
        for name, value in values.items():
            if value is None or value is False:
                continue
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            params[name] = "true" if value is True else value
        return params

    def _get(self, path, params=None, modified_since=None):
        headers = {}
        if modified_since is not None:
            # Per request, never on the client: one client may serve several threads.
            headers["If-Modified-Since"] = (
                modified_since.strftime("%Y-%m-%dT%H:%M:%S")
                if hasattr(modified_since, "strftime")
                else modified_since
            )
        return self.request("GET", path, params=params, headers=headers)

    def get_contacts(self, ids=None, page=None, page_size=None, modified_since=None, where=None,
                     include_archived=False, summary_only=False):  # fmt: skip
        params = self._params(
            IDs=ids, page=page, pageSize=page_size, where=where,
            includeArchived=include_archived, summaryOnly=summary_only,
        )  # fmt: skip
        return self._get("Contacts", params, modified_since)["Contacts"]

    def iter_contacts(self, page_size=100, **filters):
        page = 1
        while True:
            rows = self.get_contacts(page=page, page_size=page_size, **filters)
            yield from rows
            if len(rows) < page_size:
                return
            page += 1

    def get_page(self, resource: str, page: int, page_size: int = 1000, *, order=None, where=None,
                 modified_since=None, include_archived=False) -> tuple[list[dict], dict]:  # fmt: skip
        """One page of Contacts, Invoices or Payments (``pageSize`` up to 1000) and Xero's pagination block
        ({page, pageSize, pageCount, itemCount}; empty when Xero sends none). Backfill and reconciliation
        page with a stable ``order`` (the record id), so a record changed meanwhile keeps its place."""
        params = self._params(
            page=page, pageSize=page_size, order=order, where=where, includeArchived=include_archived
        )
        body = self._get(resource, params, modified_since)
        return body.get(resource) or [], body.get("pagination") or {}

    def get_contact(self, contact_id):
        return self._get(f"Contacts/{contact_id}")["Contacts"][0]

    def get_invoices(
        self, ids=None, page=None, statuses=None, contact_ids=None, modified_since=None, where=None
    ):
        params = self._params(IDs=ids, page=page, Statuses=statuses, ContactIDs=contact_ids, where=where)
        return self._get("Invoices", params, modified_since)["Invoices"]

    def get_invoice(self, invoice_id):
        return self._get(f"Invoices/{invoice_id}")["Invoices"][0]

    def get_payments(self, where=None, page=None, modified_since=None):
        return self._get("Payments", self._params(where=where, page=page), modified_since)["Payments"]

    def get_payment(self, payment_id):
        return self._get(f"Payments/{payment_id}")["Payments"][0]

    def get_credit_notes(self, where=None, page=None, modified_since=None):
        return self._get("CreditNotes", self._params(where=where, page=page), modified_since)["CreditNotes"]

    def get_credit_note(self, credit_note_id):
        return self._get(f"CreditNotes/{credit_note_id}")["CreditNotes"][0]

    def organisation(self) -> dict:
        """GET /Organisation: the tenant's settings (Name, BaseCurrency, Timezone …); needs the
        ``accounting.settings.read`` scope."""
        return self._get("Organisation")["Organisations"][0]

    def get_organisation(self):
        """Cheap call for "Test connection", which needs no settings scope: a one-row contacts page."""
        return self.get_contacts(page=1, page_size=1, summary_only=True)

    def remaining_limits(self) -> dict:
        """What is left of this tenant's minute and day (for "Test connection")."""
        return (
            {kind: self.limiter.remaining(kind) for kind in ("minute", "day")} if self.limiter.scope else {}
        )
