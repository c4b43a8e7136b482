"""Pipedrive API client (v2 records, v1 notes/webhooks/users): token costs, burst and daily budget."""

from django.conf import settings

from connector.clients.http import ApiClient, TokenProvider, retry_after_seconds
from connector.errors import BudgetExhausted
from connector.limits.ratelimit import NoLimiter, PipedriveLimiter

_DEFAULT = object()

# (version, METHOD, spec path) -> x-token-cost, from the vendored specs/pipedrive (a test checks it).
TOKEN_COSTS = {
    **{("v2", "GET", f"/{e}"): 10 for e in ("organizations", "persons", "deals", "activities")},
    **{("v2", "GET", f"/{e}/{{id}}"): 1 for e in ("organizations", "persons", "deals", "activities")},
    **{("v2", "POST", f"/{e}"): 5 for e in ("organizations", "persons", "deals", "activities")},
    **{("v2", "PATCH", f"/{e}/{{id}}"): 5 for e in ("organizations", "persons", "deals", "activities")},
    **{("v2", "DELETE", f"/{e}/{{id}}"): 3 for e in ("organizations", "persons", "deals", "activities")},
    ("v2", "GET", "/organizations/search"): 20,
    ("v2", "GET", "/persons/search"): 20,
    ("v2", "GET", "/itemSearch/field"): 20,
    ("v2", "GET", "/pipelines"): 5,
    ("v2", "GET", "/stages"): 5,
    ("v2", "POST", "/pipelines"): 5,
    ("v2", "POST", "/stages"): 5,
    **{("v2", "GET", f"/{e}Fields"): 10 for e in ("organization", "person", "deal")},
    **{("v2", "POST", f"/{e}Fields"): 5 for e in ("organization", "person", "deal")},
    ("v1", "POST", "/notes"): 10,
    ("v1", "GET", "/webhooks"): 10,
    ("v1", "POST", "/webhooks"): 10,
    ("v1", "DELETE", "/webhooks/{id}"): 6,
    ("v1", "GET", "/users/me"): 2,
}
ENTITIES = {"organization": "organizations", "person": "persons", "deal": "deals", "activity": "activities"}
SEARCH_PAGE = 500  # the largest page Pipedrive's v2 searches return


class PipedriveClient(ApiClient):
    service = "pipedrive"
    limiter: PipedriveLimiter | NoLimiter

    def __init__(
        self, company_id, base_url: str | None = None, auth: "str | TokenProvider" = "", limiter=_DEFAULT
    ):
        self.company_id = str(company_id)
        self.auth = auth
        token_scope = f"api-token:{company_id}" if isinstance(auth, str) else f"oauth:{company_id}"
        limiter_ = PipedriveLimiter(company_id, token_scope) if limiter is _DEFAULT else limiter
        super().__init__(base_url or settings.PIPEDRIVE_API_URL, limiter_)

    def auth_headers(self):
        if isinstance(self.auth, str):
            return {"x-api-token": self.auth}
        return {"Authorization": f"Bearer {self.auth.get_token()}"}

    def refresh_auth(self):
        if isinstance(self.auth, str):
            return False  # an API token cannot be refreshed: 401 means deleted user or regenerated token
        self.auth.on_unauthorized()
        return True

    def observe(self, response):
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self.limiter.observe_burst_remaining(int(remaining))

    def rate_limit_wait(self, response):
        # x-ratelimit-reset: seconds until the burst window resets; Retry-After: seconds or an HTTP-date.
        return retry_after_seconds(
            response.headers.get("x-ratelimit-reset") or response.headers.get("Retry-After")
        )

    def on_429(self, response):
        # Burst headers still showing room on a 429 means the daily budget is spent (pipedrive-api.md §4.3).
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit() and int(remaining) >= 1:
            raise BudgetExhausted(self.limiter.exhaust("daily-tokens"), "Pipedrive daily token budget spent")

    def error_message(self, response):
        try:
            body = response.json()
        except ValueError:
            return response.text[:300]
        return str(body.get("error") or body)[:500]

    def call(self, version: str, method: str, spec_path: str, path: str | None = None, **kwargs):
        """One operation, spending its token cost from the company budget."""
        units = TOKEN_COSTS.get((version, method, spec_path), 10)
        return self.request(method, f"api/{version}{path or spec_path}", units=units, **kwargs)

    # --- v2 records -----------------------------------------------------------
    def get(self, entity: str, record_id):
        plural = ENTITIES[entity]
        return self.call("v2", "GET", f"/{plural}/{{id}}", f"/{plural}/{record_id}")["data"]

    def list(self, entity: str, cursor=None, limit=100, **filters):
        """One page: (rows, next cursor or None)."""
        params = {
            k: v for k, v in {"cursor": cursor, "limit": min(limit, 500), **filters}.items() if v is not None
        }
        body = self.call("v2", "GET", f"/{ENTITIES[entity]}", params=params)
        return body["data"] or [], (body.get("additional_data") or {}).get("next_cursor")

    def iter(self, entity: str, limit=500, **filters):
        cursor = None
        while True:
            rows, cursor = self.list(entity, cursor=cursor, limit=limit, **filters)
            yield from rows
            if not cursor:
                return

    def create(self, entity: str, data: dict):
        return self.call("v2", "POST", f"/{ENTITIES[entity]}", json=data)["data"]

    def update(self, entity: str, record_id, data: dict):
        plural = ENTITIES[entity]
        return self.call("v2", "PATCH", f"/{plural}/{{id}}", f"/{plural}/{record_id}", json=data)["data"]

    def delete(self, entity: str, record_id):
        plural = ENTITIES[entity]
        return self.call("v2", "DELETE", f"/{plural}/{{id}}", f"/{plural}/{record_id}")

    # --- v2 activities (the overdue reminder) --------------------------------
    def create_activity(self, data: dict) -> dict:
        """POST /api/v2/activities (subject, type, due_date, owner_id, deal_id, person_id, org_id, done,
        note); 5 tokens."""
        return self.create("activity", data)

    def update_activity(self, activity_id, data: dict) -> dict:
        """PATCH /api/v2/activities/{id} (e.g. ``{"done": True}``); 5 tokens."""
        return self.update("activity", activity_id, data)

    def activities_for_deal(self, deal_id, done: bool | None = None):
        """Every activity of a deal, a list of dicts (GET /api/v2/activities?deal_id=, 10 tokens a page
        of 500)."""
        filters = {"deal_id": deal_id}
        if done is not None:
            filters["done"] = "true" if done else "false"
        return list(self.iter("activity", **filters))

    def _pages(self, spec_path: str, params: dict, items_of):
        """Every page of a search, following ``next_cursor`` (500 a page; each page costs its tokens):
        a match beyond the first page must not be taken for no match."""
        params = {k: v for k, v in {**params, "limit": SEARCH_PAGE}.items() if v is not None}
        found = []
        while True:
            body = self.call("v2", "GET", spec_path, params=params)
            found += items_of(body)
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return found
            params = {**params, "cursor": cursor}

    def _search(self, entity, term, fields=None, exact_match=True, **extra):
        params = {"term": term, "exact_match": "true" if exact_match else "false", "fields": fields, **extra}
        return self._pages(
            f"/{ENTITIES[entity]}/search",
            params,
            lambda body: [item["item"] for item in (body.get("data") or {}).get("items", [])],
        )

    def search_organizations(self, term, fields=None, exact_match=True):
        return self._search("organization", term, fields, exact_match)

    def search_persons(self, term, fields=None, exact_match=True, organization_id=None):
        return self._search("person", term, fields, exact_match, organization_id=organization_id)

    def search_field(self, entity_type: str, field: str, term: str):
        params = {"term": term, "entity_type": entity_type, "field": field, "match": "exact"}
        return self._pages("/itemSearch/field", params, lambda body: body.get("data") or [])

    def pipelines(self):
        return self.call("v2", "GET", "/pipelines")["data"]

    def stages(self, pipeline_id=None):
        params = {"pipeline_id": pipeline_id} if pipeline_id else None
        return self.call("v2", "GET", "/stages", params=params)["data"]

    def fields(self, entity: str):
        return self.call("v2", "GET", f"/{entity}Fields")["data"]

    def all_fields(self, entity: str):
        """Every field of ``entity`` (standard and custom), following the cursor (500 a page)."""
        rows: list[dict] = []
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            body = self.call("v2", "GET", f"/{entity}Fields", params=params)
            rows += body.get("data") or []
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return rows

    def create_pipeline(self, data: dict):
        return self.call("v2", "POST", "/pipelines", json=data)["data"]

    def create_stage(self, data: dict):
        return self.call("v2", "POST", "/stages", json=data)["data"]

    def add_field(self, entity: str, data: dict):
        return self.call("v2", "POST", f"/{entity}Fields", json=data)["data"]

    # --- v1 -------------------------------------------------------------------
    def add_note(self, content: str, **links):
        return self.call("v1", "POST", "/notes", json={"content": content, **links})["data"]

    def list_webhooks(self):
        return self.call("v1", "GET", "/webhooks")["data"]

    def create_webhook(self, data: dict):
        return self.call("v1", "POST", "/webhooks", json=data)["data"]

    def delete_webhook(self, webhook_id):
        return self.call("v1", "DELETE", "/webhooks/{id}", f"/webhooks/{webhook_id}")

    def get_current_user(self):
        return self.call("v1", "GET", "/users/me")["data"]

    def remaining_budget(self) -> int:
        return self.limiter.remaining("daily-tokens")

    def remaining_limits(self) -> dict:
        """Daily tokens left for this company (for "Test connection")."""
        return {"daily-tokens": self.remaining_budget()} if self.limiter.scope else {}
