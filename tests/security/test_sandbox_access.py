"""The sandbox's control and inspection endpoints (sandbox/control.py): a staff session with CSRF, or
the X-Sandbox-Token header; nobody else. No answer or page carries a signing key or a password.
With SANDBOX_ENABLED off neither the sandbox's URLs nor its admin exist."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver
from django.utils import timezone

from sandbox import clock, faults, webhooks
from sandbox.models import FaultSwitch, WebhookSubscription
from sandbox.pipedrive.models import PanelExtension

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-sandbox-control-token"  # config/settings_test.py
KEY = "KNOWN-SIGNING-KEY-" + "x" * 60
RECEIVER = "https://receiver.example.com/webhooks/xero/pair-1/"

pytestmark = pytest.mark.django_db

# (method, path, JSON body) for every control endpoint; {pk} is the known webhook's id.
ENDPOINTS = [
    ("get", "/sandbox/_clock", None),
    ("post", "/sandbox/_clock", {"date": "2099-01-01"}),
    ("get", "/sandbox/_webhooks/", None),
    ("post", "/sandbox/_webhooks/", {"client_id": "NEWAPP", "url": RECEIVER, "signing_key": "other-key-123"}),
    ("get", "/sandbox/_webhooks/deliveries", None),
    ("post", "/sandbox/_webhooks/deliver", None),
    ("post", "/sandbox/_webhooks/{pk}/intent-to-receive", None),
    ("get", "/sandbox/xero/_faults", None),
    ("post", "/sandbox/xero/_faults", {"error_rate": 1}),
    ("get", "/sandbox/pipedrive/_counters", None),
    ("post", "/sandbox/pipedrive/_reset", None),
    ("get", "/sandbox/pipedrive/_panels", None),
    (
        "post",
        "/sandbox/pipedrive/_panels",
        {"name": "Invoices", "endpoint_url": RECEIVER, "jwt_secret": "PANEL-JWT-SECRET-VALUE"},
    ),
]
IDS = [f"{m} {p}" for m, p, _ in ENDPOINTS]


@pytest.fixture(autouse=True)
def _sandbox_clock_back_to_now():
    """POST /sandbox/_clock moves the clock of every process: put it back for the next test."""
    yield
    clock.reset()


@pytest.fixture
def hook(db):
    return webhooks.register_xero_webhook("KNOWNAPP", RECEIVER, signing_key=KEY)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="pw-ops-12345", is_staff=True)


@pytest.fixture(autouse=True)
def _no_real_http(monkeypatch):
    """intent-to-receive and deliver post to the receiver: answer without the network."""

    class Answer:
        status_code, ok, text = 200, True, ""

    monkeypatch.setattr(webhooks.requests, "post", lambda *a, **k: Answer())


def call(client, method, path, body, hook, **extra):
    path = path.format(pk=hook.pk)
    if method == "get":
        return client.get(path, **extra)
    return client.post(path, json.dumps(body or {}), content_type="application/json", **extra)


def state():
    return (
        list(WebhookSubscription.objects.values_list("pk", "intent_verified_at", "signing_key")),
        list(FaultSwitch.objects.values_list("service", "error_rate")),
        list(PanelExtension.objects.values_list("pk", "endpoint_url", "jwt_secret")),
        clock.shared_offset(),
    )


def csrf_client(user):
    """A logged-in browser that checks CSRF as a real one would (the cookie set by a page)."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/admin/")  # sets the csrftoken cookie
    return browser, browser.cookies["csrftoken"].value


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_anonymous_callers_are_refused_and_change_nothing(method, path, body, hook):
    faults.set_faults("pipedrive", error_rate=0.5)
    before = state()
    answer = call(Client(), method, path, body, hook)
    assert answer.status_code == 401
    assert answer["Content-Type"] == "application/json" and "X-Sandbox-Token" in answer.json()["detail"]
    assert state() == before and faults.get("pipedrive").error_rate == 0.5


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_a_wrong_token_is_refused(method, path, body, hook):
    before = state()
    answer = call(Client(), method, path, body, hook, HTTP_X_SANDBOX_TOKEN=TOKEN + "x")
    assert answer.status_code == 403 and state() == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_with_token_access_off_even_an_empty_token_is_refused(method, path, body, hook, settings):
    settings.SANDBOX_CONTROL_TOKEN = ""
    for sent in ("", TOKEN):
        answer = call(Client(), method, path, body, hook, HTTP_X_SANDBOX_TOKEN=sent)
        assert answer.status_code in (401, 403)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_the_right_token_is_let_in(method, path, body, hook):
    answer = call(Client(), method, path, body, hook, HTTP_X_SANDBOX_TOKEN=TOKEN)
    assert answer.status_code in (200, 201), answer.content


@pytest.mark.parametrize(("method", "path", "body"), [e for e in ENDPOINTS if e[0] == "post"])
def test_a_staff_session_without_the_csrf_token_is_refused(method, path, body, hook, staff):
    browser, _ = csrf_client(staff)
    faults.set_faults("pipedrive", error_rate=0.5)
    before = state()
    answer = call(browser, method, path, body, hook, HTTP_ORIGIN="https://evil.example")
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
    answer = call(browser, method, path, body, hook)
    assert answer.status_code == 403
    assert state() == before and faults.get("pipedrive").error_rate == 0.5


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_a_staff_session_with_the_csrf_token_is_let_in(method, path, body, hook, staff):
    browser, csrf = csrf_client(staff)
    answer = call(browser, method, path, body, hook, HTTP_X_CSRFTOKEN=csrf)
    assert answer.status_code in (200, 201), answer.content


def test_logged_in_users_who_are_not_staff_are_refused(hook, django_user_model):
    user = django_user_model.objects.create_user("someone", password="pw-someone-123")
    client = Client()
    client.force_login(user)
    assert client.get("/sandbox/_webhooks/").status_code == 403
    assert client.post("/sandbox/xero/_reset").status_code == 403


def test_every_underscore_route_of_the_sandbox_is_guarded():
    from sandbox import urls

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    control = [(route, view) for route, view in walk(urls.urlpatterns) if "/_" in "/" + route]
    assert len(control) >= 7
    for route, view in control:
        assert getattr(view, "sandbox_control", False), route


def test_no_answer_or_page_shows_the_signing_key(hook, admin_client, django_user_model):
    """Every control endpoint (token and staff session) and the sandbox's admin pages."""
    from sandbox.pipedrive.models import Company, OAuthApp, User, Webhook

    company = Company.objects.create(name="Demo", domain="demo")
    pd_user = User.objects.create(company=company, name="Pat", email="pat@example.com")
    app = OAuthApp.objects.create(
        name="App", client_id="pd-client", client_secret="PD-CLIENT-SECRET-VALUE", redirect_uri=RECEIVER
    )
    secrets = [KEY, pd_user.api_token, app.client_secret]
    pd_hook = Webhook.objects.create(
        company=company, user=pd_user, event_action="*", event_object="deal",
        subscription_url=RECEIVER, http_auth_user="u", http_auth_password="PD-HOOK-PASSWORD-VALUE",
        add_time=timezone.now(),
    )  # fmt: skip
    secrets.append(pd_hook.http_auth_password)
    webhooks.queue_delivery(
        "pipedrive", RECEIVER, b"{}", {"Authorization": "Basic UEQtSE9PSy1QQVNTV09SRC1WQUxVRQ=="}
    )
    secrets.append("UEQtSE9PSy1QQVNTV09SRC1WQUxVRQ==")
    panel = PanelExtension.objects.create(
        company=company, name="Invoices", endpoint_url=RECEIVER, jwt_secret="PANEL-JWT-SECRET-VALUE-0001"
    )
    secrets += [panel.jwt_secret, "PANEL-JWT-SECRET-VALUE"]

    bodies = []
    for method, path, body in ENDPOINTS:
        bodies.append(call(Client(), method, path, body, hook, HTTP_X_SANDBOX_TOKEN=TOKEN))
        bodies.append(call(admin_client, method, path, body, hook))
    from sandbox.models import WebhookDelivery

    pages = [
        "/sandbox/",
        "/admin/sandbox/webhooksubscription/",
        f"/admin/sandbox/webhooksubscription/{hook.pk}/change/",
        f"/admin/sandbox/webhookdelivery/{WebhookDelivery.objects.latest('pk').pk}/change/",
        "/admin/sandbox_pipedrive/user/",
        f"/admin/sandbox_pipedrive/user/{pd_user.pk}/change/",
        f"/admin/sandbox_pipedrive/oauthapp/{app.pk}/change/",
        f"/admin/sandbox_pipedrive/webhook/{pd_hook.pk}/change/",
        "/admin/sandbox_pipedrive/panelextension/",
        f"/admin/sandbox_pipedrive/panelextension/{panel.pk}/change/",
    ]
    for page in pages:
        answer = admin_client.get(page)
        assert answer.status_code == 200, page
        bodies.append(answer)
    for answer in bodies:
        text = answer.content.decode()
        for secret in secrets:
            assert secret not in text, (answer.wsgi_request.path, secret[:12])
    listed = Client().get("/sandbox/_webhooks/", HTTP_X_SANDBOX_TOKEN=TOKEN).json()["subscriptions"]
    assert listed[0]["has_signing_key"] is True and "signing_key" not in listed[0]


def test_the_portal_shows_a_new_webhooks_generated_key_once(admin_client):
    added = admin_client.post(
        "/admin/sandbox/webhooksubscription/add/",
        {"service": "xero", "app_ref": "APP", "url": RECEIVER, "categories": "CONTACT", "active": "on",
         "_continue": "1"},
        follow=True,
    )  # fmt: skip
    key = WebhookSubscription.objects.get().signing_key
    assert len(key) == 88 and f'<code id="new-signing-key">{key}</code>' in added.content.decode()
    again = admin_client.get(added.redirect_chain[-1][0])
    assert key not in again.content.decode()


SANDBOX_OFF = """
import django, json
django.setup()
from django.contrib import admin
from django.urls import Resolver404, resolve
labels = sorted({m._meta.app_label for m in admin.site._registry})
paths = {}
for path in ("/sandbox/", "/sandbox/_clock", "/sandbox/_webhooks/", "/sandbox/xero/_faults",
             "/sandbox/pipedrive/_reset",
             "/admin/sandbox/webhooksubscription/"):
    try:
        paths[path] = resolve(path).url_name or "resolved"
    except Resolver404:
        paths[path] = None
print(json.dumps({"labels": labels, "paths": paths}))
"""


def run_with_sandbox(enabled: str, tmp_path) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SANDBOX_ENABLED": enabled,
        "CONNECTOR_DATA_DIR": str(tmp_path / enabled),
        "SECRET_KEY": "x" * 60,
        "FIELD_ENCRYPTION_KEY": "8Yx3pZbM0P8Ck8sUiZr2m3qW2b9yUOvRZ0xWgsl0c0Q=",
    }
    done = subprocess.run(
        [sys.executable, "-c", SANDBOX_OFF], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_the_sandbox_off_neither_its_urls_nor_its_admin_exist(tmp_path):
    off = run_with_sandbox("0", tmp_path)
    assert not {"sandbox", "sandbox_xero", "sandbox_pipedrive"} & set(off["labels"])
    assert "connector" in off["labels"]
    assert off["paths"]["/sandbox/"] is None and off["paths"]["/sandbox/_webhooks/"] is None
    assert off["paths"]["/sandbox/_clock"] is None
    assert off["paths"]["/sandbox/xero/_faults"] is None and off["paths"]["/sandbox/pipedrive/_reset"] is None
    # the admin's catch-all resolves any path, but not to a sandbox model's page
    assert off["paths"]["/admin/sandbox/webhooksubscription/"] != "sandbox_webhooksubscription_changelist"

    on = run_with_sandbox("1", tmp_path)  # the same check sees them when the sandbox is on
    assert {"sandbox", "sandbox_xero", "sandbox_pipedrive"} <= set(on["labels"])
    assert on["paths"]["/sandbox/_webhooks/"] == "sandbox-webhooks"
    assert on["paths"]["/sandbox/_clock"] == "sandbox-clock"
    assert on["paths"]["/admin/sandbox/webhooksubscription/"] == "sandbox_webhooksubscription_changelist"
