"""Thin views of the emulated Pipedrive: parse, call services, wrap in Pipedrive's envelope.

Every API view is built with ``guard.endpoint`` (auth, faults, limits, counters, headers).
"""

import json
import logging

from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.template import engines
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import clock
from sandbox.pipedrive import guard, oauth, services, spec
from sandbox.pipedrive.models import Entity, Pipeline, Stage, User, Webhook
from sandbox.pipedrive.services import ApiError

log = logging.getLogger(__name__)


def ok(data, additional_data=None, http_status=200, **extra) -> JsonResponse:
    body = {"success": True, **extra, "data": data}
    if additional_data is not None:
        body["additional_data"] = additional_data
    return JsonResponse(body, status=http_status)


def body_of(request, form_allowed: bool = False) -> dict:
    if form_allowed and request.content_type != "application/json":
        return request.POST.dict()
    try:
        return json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The body must be valid JSON") from None


def handles_errors(fn, version: str, spec_path: str, method: str):
    """The request checked against the spec, the handler run atomically, errors in Pipedrive's envelope."""

    def run(request, caller, **kwargs):
        try:
            spec.check_query(version, spec_path, method, request.GET)
            if version == "v2" and method in ("POST", "PATCH") and request.content_type == "application/json":
                spec.check_body(version, spec_path, method, body_of(request))
            with transaction.atomic():  # nothing is saved when the answer is an error
                response = fn(request, caller, **kwargs)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                return response
        except spec.SpecError as exc:
            return guard.error(400, str(exc))
        except ApiError as exc:
            return guard.error(exc.status, exc.message)
        except Exception:
            # A defect of the emulator, never the caller's: still Pipedrive's JSON envelope.
            log.exception("sandbox Pipedrive failed on %s %s", request.method, request.path)
            return guard.error(500, "Internal server error")

    return run


def api(version, spec_path, search=False, **handlers):
    return guard.endpoint(
        version,
        spec_path,
        {m: handles_errors(f, version, spec_path, m) for m, f in handlers.items()},
        search=search,
    )


# --- organizations, persons, deals (v2) --------------------------------------------------------


def record_views(entity: str, plural: str):
    def list_(request, caller):
        page, next_cursor = services.list_records(caller.company, entity, request.GET)
        codes = services.custom_field_codes(caller.company.id, entity)
        return ok([services.serialize(r, codes) for r in page], {"next_cursor": next_cursor})

    def create(request, caller):
        return ok(services.serialize(services.create_record(caller, entity, body_of(request))))

    def get(request, caller, record_id):
        return ok(services.serialize(services.get_record(caller.company, entity, record_id)))

    def update(request, caller, record_id):
        return ok(services.serialize(services.update_record(caller, entity, record_id, body_of(request))))

    def delete(request, caller, record_id):
        return ok({"id": services.delete_record(caller, entity, record_id).id})

    def merge(request, caller, record_id):
        body = body_of(request, form_allowed=True)
        try:
            survivor_id = int(body.get("merge_with_id"))
        except (TypeError, ValueError):
            raise ApiError(400, "merge_with_id is required") from None
        return ok({"id": services.merge_records(caller, entity, record_id, survivor_id).id})

    collection = api("v2", f"/{plural}", GET=list_, POST=create)
    item = api("v2", f"/{plural}/{{id}}", GET=get, PATCH=update, DELETE=delete)
    merged = api("v1", f"/{plural}/{{id}}/merge", PUT=merge)
    return collection, item, merged


organizations, organization, organization_merge = record_views(Entity.ORGANIZATION, "organizations")
persons, person, person_merge = record_views(Entity.PERSON, "persons")
deals, deal, deal_merge = record_views(Entity.DEAL, "deals")


def search_views(entity: str, plural: str):
    def search(request, caller):
        items, next_cursor = services.search_records(caller.company, entity, request.GET)
        return ok({"items": items}, {"next_cursor": next_cursor})

    return api("v2", f"/{plural}/search", search=True, GET=search)


organization_search = search_views(Entity.ORGANIZATION, "organizations")
person_search = search_views(Entity.PERSON, "persons")
deal_search = search_views(Entity.DEAL, "deals")


def _item_search(request, caller):
    items, next_cursor = services.search_items(caller.company, request.GET)
    return ok({"items": items, "related_items": []}, {"next_cursor": next_cursor})


item_search = api("v2", "/itemSearch", search=True, GET=_item_search)


def _item_search_field(request, caller):
    items, next_cursor = services.search_field(caller.company, request.GET)
    return ok(items, {"next_cursor": next_cursor})


item_search_field = api("v2", "/itemSearch/field", search=True, GET=_item_search_field)


# --- fields (v2) --------------------------------------------------------------------------------


def field_views(entity: str, name: str):
    def list_(request, caller):
        include = services.namespaces_asked(request.GET.get("include_fields"))
        fields = services.list_fields(caller.company, entity, include)
        limit = services.page_limit(request.GET.get("limit"))
        start = services.decode_cursor(request.GET["cursor"]) if request.GET.get("cursor") else 0
        page = fields[start : start + limit]
        more = start + limit < len(fields)
        return ok(page, {"next_cursor": services.encode_cursor(start + limit) if more else None})

    def create(request, caller):
        return ok(services.serialize_field(services.create_field(caller.company, entity, body_of(request))))

    def get(request, caller, field_code):
        include = services.namespaces_asked(request.GET.get("include_fields"))
        return ok(services.get_field(caller.company, entity, field_code, include))

    return api("v2", f"/{name}", GET=list_, POST=create), api("v2", f"/{name}/{{field_code}}", GET=get)


deal_fields, deal_field = field_views(Entity.DEAL, "dealFields")
organization_fields, organization_field = field_views(Entity.ORGANIZATION, "organizationFields")
person_fields, person_field = field_views(Entity.PERSON, "personFields")


# --- pipelines and stages (v2) ------------------------------------------------------------------


def _pipelines(request, caller):
    page, next_cursor = services.cursor_page(Pipeline.objects.filter(company=caller.company), request.GET)
    return ok([services.serialize_pipeline(p) for p in page], {"next_cursor": next_cursor})


def _pipeline(request, caller, record_id):
    pipeline = Pipeline.objects.filter(company=caller.company, id=record_id).first()
    if pipeline is None:
        raise ApiError(404, "Pipeline not found")
    return ok(services.serialize_pipeline(pipeline))


def _stages(request, caller):
    rows = Stage.objects.filter(pipeline__company=caller.company)
    if request.GET.get("pipeline_id"):
        rows = rows.filter(pipeline_id=request.GET["pipeline_id"])
    page, next_cursor = services.cursor_page(rows, request.GET)
    if request.GET.get("sort_by") == "order_nr":
        page.sort(key=lambda s: (s.pipeline_id, s.order_nr))
    return ok([services.serialize_stage(s) for s in page], {"next_cursor": next_cursor})


def _stage(request, caller, record_id):
    stage = Stage.objects.filter(pipeline__company=caller.company, id=record_id).first()
    if stage is None:
        raise ApiError(404, "Stage not found")
    return ok(services.serialize_stage(stage))


def _pipeline_create(request, caller):
    return ok(services.serialize_pipeline(services.create_pipeline(caller.company, body_of(request))))


def _stage_create(request, caller):
    return ok(services.serialize_stage(services.create_stage(caller.company, body_of(request))))


pipelines = api("v2", "/pipelines", GET=_pipelines, POST=_pipeline_create)
pipeline = api("v2", "/pipelines/{id}", GET=_pipeline)
stages = api("v2", "/stages", GET=_stages, POST=_stage_create)
stage = api("v2", "/stages/{id}", GET=_stage)


# --- activities (v2) ---------------------------------------------------------------------------


def _activities_list(request, caller):
    page, next_cursor = services.list_activities(caller.company, request.GET)
    return ok([services.serialize_activity(a) for a in page], {"next_cursor": next_cursor})


def _activity_create(request, caller):
    return ok(services.serialize_activity(services.create_activity(caller, body_of(request))))


def _activity(request, caller, record_id):
    return ok(services.serialize_activity(services.get_activity(caller.company, record_id)))


def _activity_update(request, caller, record_id):
    return ok(services.serialize_activity(services.update_activity(caller, record_id, body_of(request))))


def _activity_delete(request, caller, record_id):
    return ok({"id": services.delete_activity(caller, record_id).id})


activities = api("v2", "/activities", GET=_activities_list, POST=_activity_create)
activity = api("v2", "/activities/{id}", GET=_activity, PATCH=_activity_update, DELETE=_activity_delete)


# --- notes (v1) ---------------------------------------------------------------------------------


def _notes_list(request, caller):
    page, pagination = services.list_notes(caller.company, request.GET)
    return ok([services.serialize_note(n) for n in page], {"pagination": pagination})


def _notes_create(request, caller):
    return ok(services.serialize_note(services.create_note(caller, body_of(request, form_allowed=True))))


def _note(request, caller, record_id):
    note = caller.company.notes.filter(id=record_id).first()
    if note is None:
        raise ApiError(404, "Note not found")
    return ok(services.serialize_note(note))


notes = api("v1", "/notes", GET=_notes_list, POST=_notes_create)
note = api("v1", "/notes/{id}", GET=_note)


# --- webhooks (v1) ------------------------------------------------------------------------------

WEBHOOK_ACTIONS = {"create", "change", "delete", "*"}
WEBHOOK_OBJECTS = {
    "activity",
    "deal",
    "lead",
    "note",
    "organization",
    "person",
    "pipeline",
    "product",
    "stage",
    "user",
    "*",
}
WEBHOOKS_PER_USER = 40


def serialize_webhook(hook: Webhook) -> dict:
    return {
        "id": hook.id,
        "company_id": hook.company_id,
        "owner_id": hook.user_id,
        "user_id": hook.user_id,
        "event_action": hook.event_action,
        "event_object": hook.event_object,
        "subscription_url": hook.subscription_url,
        "version": hook.version,
        "is_active": 1,
        "add_time": hook.add_time.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "remove_time": None,
        "type": hook.type,
        "http_auth_user": hook.http_auth_user or None,
        "http_auth_password": hook.http_auth_password or None,
        "remove_reason": None,
        "last_delivery_time": None,
        "last_http_status": None,
        "admin_id": hook.user_id,
        "name": hook.name,
    }


def _webhook_errors(body) -> dict:
    errors = {}
    url = body.get("subscription_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        errors["subscription_url"] = ["must be a public http(s) URL"]
    if body.get("event_action") not in WEBHOOK_ACTIONS:
        errors["event_action"] = [f"must be one of {', '.join(sorted(WEBHOOK_ACTIONS))}"]
    if body.get("event_object") not in WEBHOOK_OBJECTS:
        errors["event_object"] = [f"must be one of {', '.join(sorted(WEBHOOK_OBJECTS))}"]
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        errors["name"] = ["is required"]
    if body.get("version", "2.0") not in ("1.0", "2.0"):
        errors["version"] = ["must be 1.0 or 2.0"]
    return errors


def _webhooks_list(request, caller):
    hooks = Webhook.objects.filter(company=caller.company).order_by("id")
    return ok([serialize_webhook(h) for h in hooks], status="ok")


def _webhooks_create(request, caller):
    if not caller.user.is_admin:
        return JsonResponse({"success": False, "message": "Only admins can create webhooks"}, status=403)
    body = body_of(request, form_allowed=True)
    errors = _webhook_errors(body)
    if errors:
        return JsonResponse({"success": False, "status": "error", "errors": errors}, status=400)
    if Webhook.objects.filter(user=caller.user).count() >= WEBHOOKS_PER_USER:
        return guard.error(422, "Webhooks limit reached")
    owner = caller.user
    if body.get("user_id") is not None:
        owner = User.objects.filter(company=caller.company, id=body["user_id"]).first() or caller.user
    hook = Webhook.objects.create(
        company=caller.company,
        user=owner,
        name=body["name"],
        subscription_url=body["subscription_url"],
        event_action=body["event_action"],
        event_object=body["event_object"],
        version=body.get("version") or "2.0",
        http_auth_user=body.get("http_auth_user") or "",
        http_auth_password=body.get("http_auth_password") or "",
        type="application" if caller.oauth else "general",
        add_time=clock.now(),
    )
    return ok(serialize_webhook(hook), http_status=201, status="ok")


def _webhook_delete(request, caller, record_id):
    deleted, _ = Webhook.objects.filter(company=caller.company, id=record_id).delete()
    if not deleted:
        return JsonResponse(
            {"success": False, "status": "error", "errors": {"id": ["not found"]}}, status=404
        )
    return JsonResponse({"success": True, "status": "ok"})


webhooks = api("v1", "/webhooks", GET=_webhooks_list, POST=_webhooks_create)
webhook = api("v1", "/webhooks/{id}", DELETE=_webhook_delete)


# --- users (v1) --------------------------------------------------------------------------------


def _me(request, caller):
    """Who the token belongs to, and the company domain (the other way to find the API host)."""
    user, company = caller.user, caller.company
    return ok(
        {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "default_currency": "USD",
            "locale": "en_US",
            "lang": 1,
            "activated": True,
            "active_flag": True,
            "is_you": True,
            "is_deleted": False,
            "timezone_name": "UTC",
            "timezone_offset": "+00:00",
            "company_id": company.id,
            "company_name": company.name,
            "company_domain": company.domain,
            "access": [{"app": "global", "admin": user.is_admin}],
        }
    )


users_me = api("v1", "/users/me", GET=_me)


# --- OAuth --------------------------------------------------------------------------------------

CONSENT_PAGE = engines["django"].from_string(
    """<!doctype html><title>Sandbox Pipedrive: authorize {{ app.name }}</title>
<h1>Allow {{ app.name }} to access {{ company.name }}?</h1>
<p>Scopes: {{ app.scope }}</p>
<form method="post">{% csrf_token %}
<label>Sign in as <select name="user_id">{% for u in users %}<option value="{{ u.id }}">{{ u.name }}
 ({{ u.company.name }})</option>{% endfor %}</select></label>
<button name="decision" value="allow">Allow and install</button>
<button name="decision" value="deny">Cancel</button></form>"""
)


def api_domain(request) -> str:
    # The mount this request came through: <base>/sandbox/pipedrive/oauth/token -> <base>/sandbox/pipedrive
    return request.build_absolute_uri(request.path.rsplit("/oauth/", 1)[0])


@require_http_methods(["GET", "POST"])
def authorize(request):
    """The consent page: Allow redirects back with ?code=&state=, Cancel with ?error=user_denied."""
    try:
        app = oauth.find_app(request.GET.get("client_id"), request.GET.get("redirect_uri"))
    except oauth.OAuthError as exc:
        return JsonResponse({"error": exc.error, "error_description": exc.description}, status=exc.status)
    redirect_uri = request.GET.get("redirect_uri") or app.redirect_uri
    state = request.GET.get("state")
    if request.method == "GET":
        users = User.objects.select_related("company").order_by("company_id", "id")
        company = users[0].company if users else None
        return _render(request, app=app, users=users, company=company)
    params = {"state": state} if state else {}
    if request.POST.get("decision") != "allow":
        return HttpResponseRedirect(f"{redirect_uri}?{urlencode({'error': 'user_denied', **params})}")
    user = User.objects.filter(id=request.POST.get("user_id")).first()
    if user is None:
        return JsonResponse({"error": "invalid_request", "error_description": "Unknown user"}, status=400)
    code = oauth.issue_code(app, user, redirect_uri)
    return HttpResponseRedirect(f"{redirect_uri}?{urlencode({'code': code, **params})}")


def _render(request, **context):
    return HttpResponse(CONSENT_PAGE.render(context, request))


@csrf_exempt
@require_http_methods(["POST"])
def token(request):
    try:
        app = oauth.client_from_request(request)
        return JsonResponse(oauth.exchange(app, request.POST, api_domain(request)))
    except oauth.OAuthError as exc:
        return JsonResponse({"error": exc.error, "error_description": exc.description}, status=exc.status)
