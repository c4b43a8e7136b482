"""Full connect flows against the sandbox (live server), configuration only: Xero and Pipedrive."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import include, path

from connector.models import ConnectionStatus, OAuthState, PipedriveConnection, XeroConnection
from sandbox import counters
from tests.conftest import SANDBOX_PUBLIC_BASE

urlpatterns = [
    path("admin/", __import__("django.contrib.admin", fromlist=["site"]).site.urls),
    path("connect/", include("connector.connections.urls")),
    path("sandbox/", include("sandbox.urls")),
]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

BASE = SANDBOX_PUBLIC_BASE  # the address sandbox_urls (tests/conftest.py) gives the installation


@pytest.fixture
def xero_sandbox(sandbox_urls):
    from sandbox.xero import services

    app = services.create_app("Connector under test", [f"{BASE}/connect/xero/callback/"])
    orgs = [
        services.create_organisation("Acme Ltd"),
        services.create_organisation("Beta Traders", timezone="EASTERNSTANDARDTIME"),
    ]
    return app, orgs


def consent_xero(client, authorize_url, orgs):
    """Walk the sandbox consent page as a user who allows access; returns the callback query."""
    parts = urlsplit(authorize_url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    local = parts.path  # same Django process: the test client reaches the sandbox directly
    assert client.get(local, params).status_code == 200
    answer = client.post(local, {**params, "action": "allow", "tenant": [str(o.tenant_id) for o in orgs]})
    assert answer.status_code == 302, answer.content
    location = urlsplit(answer["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{BASE}/connect/xero/callback/"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_full_xero_connect_flow(admin_client, xero_sandbox):
    app, orgs = xero_sandbox
    start = admin_client.post(
        "/connect/xero/", {"client_id": app.client_id, "client_secret": app.client_secret}
    )
    assert start.status_code == 302
    authorize_url = start["Location"]
    assert "code_challenge_method=S256" in authorize_url and "state=" in authorize_url

    query = consent_xero(admin_client, authorize_url, orgs)
    callback = admin_client.get("/connect/xero/callback/", query)
    assert callback.status_code == 302
    pick_page = admin_client.get(callback["Location"])
    assert b"Acme Ltd" in pick_page.content and b"Beta Traders" in pick_page.content

    picked = admin_client.post(callback["Location"], {"tenant_id": str(orgs[1].tenant_id)})
    assert picked.status_code == 302
    conn = XeroConnection.objects.get()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.tenant_id == str(orgs[1].tenant_id) and conn.tenant_name == "Beta Traders"
    assert conn.access_token and conn.refresh_token and conn.xero_connection_id
    assert conn.org_timezone == "America/New_York"  # read from GET /Organisation on the pick
    assert "accounting.settings.read" in conn.scopes
    assert OAuthState.objects.get(state=query["state"]).token_set == ""  # the token set lives in one place

    # The same callback again (reused state) is refused and stores nothing new.
    again = admin_client.get("/connect/xero/callback/", query)
    assert again.status_code == 400 and b"already used" in again.content
    assert XeroConnection.objects.count() == 1


def test_bad_state_is_rejected_and_nothing_stored(admin_client, xero_sandbox):
    app, orgs = xero_sandbox
    start = admin_client.post(
        "/connect/xero/", {"client_id": app.client_id, "client_secret": app.client_secret}
    )
    query = consent_xero(admin_client, start["Location"], orgs)
    forged = admin_client.get("/connect/xero/callback/", {**query, "state": "attacker-state"})
    assert forged.status_code == 400 and b"unknown, expired or was already used" in forged.content
    assert XeroConnection.objects.count() == 0
    # Encrypted values cannot be filtered in SQL: check each row in Python.
    assert [row.token_set for row in OAuthState.objects.all()] == [""]


def test_expired_sandbox_token_is_refreshed_once_and_the_api_answers(admin_client, xero_sandbox):
    from connector.connections import oauth
    from connector.connections import services as connections

    app, orgs = xero_sandbox
    start = admin_client.post(
        "/connect/xero/", {"client_id": app.client_id, "client_secret": app.client_secret}
    )
    query = consent_xero(admin_client, start["Location"], orgs[:1])
    pick = admin_client.get("/connect/xero/callback/", query)["Location"]
    admin_client.post(pick, {"tenant_id": str(orgs[0].tenant_id)})
    conn = XeroConnection.objects.get()
    old_refresh = conn.refresh_token
    XeroConnection.objects.filter(pk=conn.pk).update(expires_at=conn.expires_at.replace(year=2000))

    token = oauth.xero_token_provider(conn).get_token()
    conn.refresh_from_db()
    assert token == conn.access_token and conn.refresh_token != old_refresh
    assert conn.previous_refresh_token == old_refresh

    result = connections.check_xero(conn)
    assert result.ok, str(result)
    assert "Acme Ltd" in str(result)


def test_disconnect_xero_revokes_and_removes_the_tenant_connection(admin_client, xero_sandbox, sandbox_urls):
    import requests

    from connector.connections import services as connections

    app, orgs = xero_sandbox
    start = admin_client.post(
        "/connect/xero/", {"client_id": app.client_id, "client_secret": app.client_secret}
    )
    query = consent_xero(admin_client, start["Location"], orgs[:1])
    pick = admin_client.get("/connect/xero/callback/", query)["Location"]
    admin_client.post(pick, {"tenant_id": str(orgs[0].tenant_id)})
    conn = XeroConnection.objects.get()
    access = conn.access_token

    assert connections.disconnect_xero(conn) == []
    conn.refresh_from_db()
    assert (
        conn.status == ConnectionStatus.DISCONNECTED and conn.access_token == "" and conn.refresh_token == ""
    )
    listed = requests.get(
        f"{sandbox_urls}/xero/api/connections", headers={"Authorization": f"Bearer {access}"}, timeout=10
    )
    assert listed.status_code == 401 or listed.json() == []


@pytest.fixture
def pipedrive_sandbox(sandbox_urls):
    from sandbox.pipedrive import services

    company = services.ensure_demo_company()
    return services, company


def test_full_pipedrive_oauth_flow(admin_client, pipedrive_sandbox):
    from sandbox.pipedrive.models import User

    services, company = pipedrive_sandbox
    start = admin_client.post(
        "/connect/pipedrive/",
        {"kind": "oauth", "client_id": services.DEMO_CLIENT_ID, "client_secret": services.DEMO_CLIENT_SECRET},
    )
    assert start.status_code == 302
    parts = urlsplit(start["Location"])
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert admin_client.get(parts.path, params).status_code == 200
    user = User.objects.get(api_token=services.DEMO_API_TOKEN)
    answer = admin_client.post(f"{parts.path}?{parts.query}", {"decision": "allow", "user_id": user.id})
    location = urlsplit(answer["Location"])
    assert location.path == "/connect/pipedrive/callback/"

    done = admin_client.get(
        "/connect/pipedrive/callback/", {k: v[0] for k, v in parse_qs(location.query).items()}
    )
    assert done.status_code == 302
    conn = PipedriveConnection.objects.get()
    assert conn.auth_type == "oauth" and conn.status == ConnectionStatus.ACTIVE
    assert conn.company_name == company.name and conn.api_domain and conn.refresh_token

    reused = admin_client.get(
        "/connect/pipedrive/callback/", {k: v[0] for k, v in parse_qs(location.query).items()}
    )
    assert reused.status_code == 400
    assert PipedriveConnection.objects.count() == 1


def test_pipedrive_api_token_connect_and_401_marks_broken(admin_client, pipedrive_sandbox):
    from connector.connections import services as connections

    services, company = pipedrive_sandbox
    bad = admin_client.post("/connect/pipedrive/", {"kind": "api_token", "api_token": "wrong-token"})
    assert bad.status_code == 200 and b"refused the token" in bad.content
    assert PipedriveConnection.objects.count() == 0

    done = admin_client.post(
        "/connect/pipedrive/", {"kind": "api_token", "api_token": services.DEMO_API_TOKEN}
    )
    assert done.status_code == 302
    conn = PipedriveConnection.objects.get()
    assert conn.auth_type == "api_token" and conn.company_name == company.name and conn.user_email

    # The token is regenerated in Pipedrive: the next call answers 401.
    PipedriveConnection.objects.filter(pk=conn.pk).update(api_token="regenerated-elsewhere")
    conn.refresh_from_db()
    result = connections.check_pipedrive(conn)
    conn.refresh_from_db()
    assert not result.ok
    assert conn.status == ConnectionStatus.BROKEN and "OAuth" in conn.last_error
    assert counters.snapshot("pipedrive", str(company.id)) is not None


def connect_one_xero_org(admin_client, app, org) -> XeroConnection:
    start = admin_client.post(
        "/connect/xero/", {"client_id": app.client_id, "client_secret": app.client_secret}
    )
    query = consent_xero(admin_client, start["Location"], [org])
    pick = admin_client.get("/connect/xero/callback/", query)["Location"]
    admin_client.post(pick, {"tenant_id": str(org.tenant_id)})
    return XeroConnection.objects.get(tenant_id=str(org.tenant_id))


def test_ten_threads_refresh_once_against_the_sandbox(admin_client, xero_sandbox, caplog):
    import threading

    from django.db import connections as db_connections

    from connector.connections import oauth

    app, orgs = xero_sandbox
    conn = connect_one_xero_org(admin_client, app, orgs[0])
    secrets_seen = [conn.access_token, conn.refresh_token, app.client_secret]
    XeroConnection.objects.filter(pk=conn.pk).update(expires_at=conn.expires_at.replace(year=2000))
    token_calls_before = counters.calls_to("xero", "POST /connect/token")
    tokens, errors = [], []
    barrier = threading.Barrier(10)

    def worker():
        try:
            barrier.wait()
            tokens.append(oauth.xero_token_provider(XeroConnection.objects.get(pk=conn.pk)).get_token())
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert counters.calls_to("xero", "POST /connect/token") - token_calls_before == 1
    assert counters.calls_to("xero", "POST /connect/token", status=400) == 0  # no invalid_grant
    conn.refresh_from_db()
    assert set(tokens) == {conn.access_token} and conn.status == ConnectionStatus.ACTIVE
    # Nothing logged during connect and refresh carries a token or the client secret.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in [*secrets_seen, conn.access_token, conn.refresh_token]:
        assert secret not in logged


def _refresh_in_child(connection_id, queue):
    """A separate process with its own database connection (PostgreSQL test)."""
    import django
    from django.db import connections as db_connections

    django.setup()
    db_connections.close_all()
    from connector.connections import oauth

    try:
        queue.put(oauth.xero_token_provider(XeroConnection.objects.get(pk=connection_id)).get_token())
    except Exception as exc:  # reported to the parent
        queue.put(f"error: {exc!r}")


@pytest.mark.postgres
def test_four_processes_refresh_once_on_postgresql(admin_client, xero_sandbox):
    import multiprocessing

    from django.db import connection as db_connection

    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks across processes)")
    app, orgs = xero_sandbox
    conn = connect_one_xero_org(admin_client, app, orgs[0])
    XeroConnection.objects.filter(pk=conn.pk).update(expires_at=conn.expires_at.replace(year=2000))
    before = counters.calls_to("xero", "POST /connect/token")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    db_connection.close()
    processes = [context.Process(target=_refresh_in_child, args=(conn.pk, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join()
    assert not [r for r in results if r.startswith("error")], results
    assert counters.calls_to("xero", "POST /connect/token") - before == 1
    assert len(set(results)) == 1


def test_admin_actions_test_refresh_and_disconnect(admin_client, xero_sandbox):
    app, orgs = xero_sandbox
    conn = connect_one_xero_org(admin_client, app, orgs[0])
    changelist = "/admin/connector/xeroconnection/"
    old_access = conn.access_token

    tested = admin_client.post(
        changelist, {"action": "test_connection", "_selected_action": [conn.pk]}, follow=True
    )
    text = tested.content.decode()
    assert "Xero tenant Acme Ltd" in text and "remaining:" in text and old_access not in text

    admin_client.post(changelist, {"action": "refresh_token_now", "_selected_action": [conn.pk]})
    conn.refresh_from_db()
    assert conn.access_token != old_access

    admin_client.post(changelist, {"action": "disconnect", "_selected_action": [conn.pk]})
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.DISCONNECTED
    broken = admin_client.post(
        changelist, {"action": "test_connection", "_selected_action": [conn.pk]}, follow=True
    )
    assert "disconnected" in broken.content.decode().lower()


def test_a_lost_refresh_answer_is_recovered_within_the_sandbox_grace(admin_client, xero_sandbox):
    from connector.connections import oauth

    app, orgs = xero_sandbox
    conn = connect_one_xero_org(admin_client, app, orgs[0])
    old_refresh = conn.refresh_token
    rotated = oauth.refresh_xero(conn.pk, force=True)
    assert rotated.refresh_token != old_refresh
    # As if the answer never arrived: the row still holds the old refresh token.
    conn = XeroConnection.objects.get(pk=conn.pk)
    conn.refresh_token = old_refresh
    conn.save()

    recovered = oauth.refresh_xero(conn.pk, force=True)
    assert recovered.status == ConnectionStatus.ACTIVE and recovered.access_token
    assert counters.calls_to("xero", "POST /connect/token", status=400) == 0


def test_old_refresh_token_after_the_grace_marks_the_connection_broken(
    admin_client, xero_sandbox, mailoutbox
):
    from connector.connections import oauth
    from connector.errors import ConnectionBroken
    from sandbox import clock

    app, orgs = xero_sandbox
    conn = connect_one_xero_org(admin_client, app, orgs[0])
    old_refresh = conn.refresh_token
    oauth.refresh_xero(conn.pk, force=True)
    conn = XeroConnection.objects.get(pk=conn.pk)
    conn.refresh_token = old_refresh
    conn.save()
    clock.advance(31 * 60)
    try:
        with pytest.raises(ConnectionBroken):
            oauth.refresh_xero(conn.pk, force=True)
    finally:
        clock.reset()
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.BROKEN
    assert "invalid_grant" in conn.last_error and f"/xeroconnection/{conn.pk}/change/" in conn.last_error
