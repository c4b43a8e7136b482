"""The whole product as a new admin meets it, in Chromium, against the app started by the run command.

A fresh database; the first admin signs in and enrols a second factor (``REQUIRE_2FA`` on, as in
production), signs out and in again with a code; the guided setup through the real connect pages of
the sandbox's Xero and Pipedrive; a field mapping (the customer's website → a custom organization
field); then a customer and an invoice made through the sandbox's Xero API reach the sandbox's
Pipedrive, seen on its pages, within 10 seconds. Every page is saved as a screenshot
(test-artifacts/screenshots/walkthrough-*.png) and checked to fit 1280 pixels without sideways
scrolling.
"""

import base64
import json
import re
import time
import uuid
from datetime import date, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django_otp.oath import totp

from tests.app_process import run_command

SYNC_SECONDS = 10
WEBSITE_FIELD = "Customer website"  # a custom field (Pipedrive also has a standard "Website")


@pytest.fixture
def app(tmp_path, browser):  # the browser first: without Chromium there is nothing to start the app for
    with run_command(tmp_path, extra_env={"REQUIRE_2FA": "1"}) as running:
        yield running


@pytest.fixture
def shot(page, screenshot):
    count = iter(range(1, 100))

    def take(name):
        page.wait_for_load_state("load")
        return screenshot(page, f"walkthrough-{next(count):02d}-{name}")

    return take


def credential(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the sandbox credentials:\n{text}"
    return match.group(1).strip()


def authenticator_code(secret: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows now for this base32 key (RFC 6238: 6 digits, 30 seconds), or
    ``steps_ahead`` periods later (a used code is refused; the next one is within django-otp's tolerance)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=steps_ahead):06d}"


def step_state(page, key: str) -> str:
    return page.locator(f"#step-{key}").get_attribute("data-state")


def xero_api_session(app, client_id: str, client_secret: str) -> tuple[requests.Session, str]:
    """An API client of the sandbox's Xero, as a developer's script would get one: consent, code, token."""
    sandbox = f"{app.url}/sandbox/xero"
    redirect_uri = f"{app.url}/connect/xero/callback/"
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "offline_access accounting.contacts accounting.transactions",
        "state": "walkthrough",
    }
    web = requests.Session()
    consent = web.get(f"{sandbox}/login/identity/connect/authorize", params=query, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', consent.text).group(1)
    tenant = re.search(r'name="tenant" value="([^"]+)"', consent.text).group(1)
    answer = web.post(
        consent.url,
        data={**query, "csrfmiddlewaretoken": csrf, "tenant": tenant, "action": "allow"},
        headers={"Referer": consent.url},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        f"{sandbox}/identity/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(client_id, client_secret),
        timeout=10,
    ).json()
    api = requests.Session()
    api.headers.update({"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"})
    api.headers["xero-tenant-id"] = tenant
    return api, f"{sandbox}/api/api.xro/2.0"


def test_first_run_guided_setup_mapping_and_a_customer_and_invoice_reaching_pipedrive(app, page, shot):
    credentials = app.sandbox_credentials()
    xero_id = credential(credentials, r"XERO_CLIENT_ID=(\S+)")
    xero_secret = credential(credentials, r"XERO_CLIENT_SECRET=(\S+)")
    pd_id, pd_secret = credential(credentials, r"OAuth client id / secret: (\S+ / \S+)").split(" / ")
    pd_token = credential(credentials, r"API token \(x-api-token\): (\S+)")

    # --- first run: log in, the home says where to start
    username, password = app.login()
    page.goto(f"{app.url}/admin/")
    shot("login")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    # A first sign-in with the password only leads to the enrolment of the authenticator app.
    page.wait_for_url(f"{app.url}/admin/two-factor/**")
    assert page.locator("#two-factor-qr svg").count() == 1
    secret = page.locator("#two-factor-secret").get_attribute("data-secret")
    shot("two-factor-enrol")
    page.fill("#id_code", "000000" if authenticator_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()
    assert "That code is not right" in page.locator("#content-main").inner_text()
    time.sleep(1.2)  # django-otp refuses any code for 1 s after a wrong one (its throttle), as for a person
    page.fill("#id_code", authenticator_code(secret))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{app.url}/admin/")
    # Signed out and in again: now the login needs the app's code as well as the password.
    page.locator("#logout-form button").click()
    page.goto(f"{app.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    assert "Please enter the 6-digit code" in page.locator(".errornote").inner_text()
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", authenticator_code(secret, steps_ahead=1))  # the enrolment used this period's
    shot("login-with-code")
    page.click("input[type=submit]")
    page.wait_for_url(f"{app.url}/admin/")
    callout = page.locator("#setup-callout")
    assert "Start here: set up your first sync" in callout.inner_text()
    groups = page.locator("#content-main .module caption").all_inner_texts()
    assert groups[0].upper() == "FINANCE" and groups[1].upper() == "CONNECTIONS AND SETUP", groups
    assert groups.index("ADVANCED") < groups.index("SANDBOX (EMULATED XERO AND PIPEDRIVE)"), groups
    assert page.locator("#group-advanced").get_by_text("Task queue: failed").count() == 1
    shot("home-first-run")

    # --- the guided setup, from the call-out
    callout.get_by_role("link", name="Set up a sync").click()
    assert step_state(page, "xero") == "todo" and step_state(page, "pair") == "waiting"
    shot("setup-start")

    # 1. Xero: the connect page, the sandbox's consent page, then the organisation is chosen
    page.locator("#step-xero").get_by_role("link", name="Connect Xero").click()
    page.fill("#id_client_id", xero_id)
    page.fill("#id_client_secret", xero_secret)
    shot("connect-xero")
    page.get_by_role("button", name="Continue to Xero").click()
    page.wait_for_selector("text=wants access to your organisation")
    shot("xero-consent")
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_selector("text=Pick the Xero organisation")
    organisation = page.locator("#id_tenant_id label").first
    organisation_name = organisation.inner_text().strip()
    organisation.locator("input").check()
    shot("xero-pick-organisation")
    page.get_by_role("button", name="Connect this organisation").click()
    page.wait_for_selector("#step-xero[data-state=done]")
    assert f"Connected Xero organisation {organisation_name}" in page.locator(".messagelist").inner_text()
    shot("setup-xero-connected")

    # 2. Pipedrive with OAuth: the sandbox's consent page
    page.locator("#step-pipedrive").get_by_role("link", name="Connect Pipedrive").click()
    page.locator("form").filter(has=page.locator("input[value=oauth]")).locator("#id_client_id").fill(pd_id)
    page.locator("form").filter(has=page.locator("input[value=oauth]")).locator("#id_client_secret").fill(
        pd_secret
    )
    shot("connect-pipedrive")
    page.get_by_role("button", name="Continue to Pipedrive").click()
    page.wait_for_selector("text=Allow and install")
    shot("pipedrive-consent")
    page.get_by_role("button", name="Allow and install").click()
    page.wait_for_selector("#step-pipedrive[data-state=done]")
    assert step_state(page, "pair") == "todo"
    shot("setup-pipedrive-connected")

    # 3. The pair
    page.locator("#step-pair").get_by_role("button", name="Create the sync pair").click()
    page.wait_for_selector("#step-pair[data-state=done]")
    pair_id = parse_qs(urlsplit(page.url).query)["pair"][0]
    pair_name = f"{organisation_name} → Sandbox Demo Ltd"
    assert f"“{pair_name}”" in page.locator("#step-pair").inner_text()
    assert step_state(page, "pipedrive_setup") == "todo"
    shot("setup-pair-created")

    # 4. Fields and pipeline; 5. Pipedrive webhooks (each safe to repeat: pressed twice)
    for key, button in (
        ("pipedrive_setup", "Create the fields and the pipeline"),
        ("pipedrive_webhooks", "Register the webhooks"),
    ):
        page.locator(f"#step-{key}").get_by_role("button", name=button).click()
        page.wait_for_selector(f"#step-{key}[data-state=done]")
        page.locator(f"#step-{key}").get_by_role("button", name="Check again").click()
        page.wait_for_selector(f"#step-{key}[data-state=done]")
    assert "Everything already existed" in page.locator(".messagelist").inner_text() or "0 created" in (
        page.locator(".messagelist").inner_text()
    )
    shot("setup-pipedrive-ready")

    # 6. The Xero webhook: the sandbox's stand-in for Xero's developer portal, the key pasted back,
    #    then intent to receive
    assert step_state(page, "xero_webhook") == "todo"
    webhook_url = page.locator("#xero-webhook-url").inner_text()
    portal = page.locator("#step-xero_webhook").get_by_role("link", name="webhook page for the demo app")
    page.goto(app.url + portal.get_attribute("href"))
    assert page.input_value("#id_url") == webhook_url
    shot("sandbox-portal-add-webhook")
    page.get_by_role("button", name="Save and continue editing").click()
    key = page.locator("#new-signing-key").inner_text()  # shown once, never in the form
    assert len(key) > 40
    page.goto(f"{app.url}/admin/setup/?pair={pair_id}")
    page.fill("#id_xero_webhook_key", key)
    page.get_by_role("button", name="Save the key").click()
    page.wait_for_selector("text=Webhook key saved")
    assert step_state(page, "xero_webhook") == "todo"
    page.get_by_role("button", name="Ask the sandbox's Xero to send “Intent to receive”").click()
    page.wait_for_selector("#step-xero_webhook[data-state=done]")
    assert "Intent to receive passed" in page.locator(".messagelist").inner_text()
    assert step_state(page, "backfill") == "todo"
    assert "The sync is set up." in page.locator("#content-main").inner_text()
    shot("setup-complete")

    page.goto(f"{app.url}/admin/")
    assert page.locator("#setup-callout").count() == 0
    shot("home-after-setup")

    # --- a mapping: the customer's website into a custom organization field
    pipedrive_api = f"{app.url}/sandbox/pipedrive/api/v2"
    created = requests.post(
        f"{pipedrive_api}/organizationFields",
        json={"field_name": WEBSITE_FIELD, "field_type": "varchar"},
        headers={"x-api-token": pd_token},
        timeout=10,
    )
    assert created.status_code in (200, 201), created.text
    field_code = created.json()["data"]["field_code"]
    page.goto(f"{app.url}/admin/")
    page.locator("#group-finance").get_by_role("link", name="Field mappings").click()
    page.get_by_role("link", name="Add field mapping").click()
    page.select_option("#id_pair", label=pair_name)
    page.select_option("#id_target", "organization")
    # The pick-lists fill for the pair and target: Xero fields in plain words, Pipedrive's live fields.
    page.wait_for_selector(f"#id_pipedrive_field option[value='{field_code}']", state="attached")
    page.fill("#id_source_path_filter", "website")
    page.select_option("#id_source_path", "Website")
    assert page.locator("#id_source_path option:checked").inner_text() == "Website"
    page.select_option("#id_pipedrive_field", field_code)
    assert page.locator("#id_pipedrive_field option:checked").inner_text() == f"{WEBSITE_FIELD} (varchar)"
    page.select_option("#id_transform", "text")
    page.wait_for_selector("#mapping-check.ok")
    shot("mapping-website")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".messagelist .success")
    shot("mapping-saved")

    # --- a customer and an invoice, made through the sandbox's Xero API (the website typed in Xero's app)
    xero, api = xero_api_session(app, xero_id, xero_secret)
    name = f"Walkthrough Traders {uuid.uuid4().hex[:6]}"
    website = f"https://{name.split()[-1]}.walkthrough.example"
    contact = xero.put(
        f"{api}/Contacts",
        json={"Contacts": [{"Name": name, "EmailAddress": "ap@walkthrough.example"}]},
        timeout=10,
    )
    assert contact.status_code == 200, contact.text
    contact_id = contact.json()["Contacts"][0]["ContactID"]
    page.goto(f"{app.url}/admin/sandbox_xero/contact/?{urlencode({'q': contact_id})}")
    page.get_by_role("link", name=name).click()
    page.fill("#id_website", website)
    shot("xero-app-contact-website")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".messagelist .success")
    invoice = xero.put(
        f"{api}/Invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "Date": date.today().isoformat(),
                    "DueDate": (date.today() + timedelta(days=30)).isoformat(),
                    "Status": "AUTHORISED",
                    "LineItems": [
                        {"Description": "Consulting", "Quantity": 3, "UnitAmount": 400, "AccountCode": "200"}
                    ],
                }
            ]
        },
        timeout=10,
    )
    assert invoice.status_code == 200, invoice.text
    number = invoice.json()["Invoices"][0]["InvoiceNumber"]
    written_at = time.monotonic()

    # --- within 10 seconds, on the sandbox's Pipedrive pages
    def wait_for_row(url, text) -> float:
        """Reload the list page until a row shows ``text``; the seconds since the invoice was written."""
        while True:
            page.goto(url)
            rows = page.locator("#result_list tbody")
            if rows.count() and text in rows.inner_text():
                return time.monotonic() - written_at
            assert time.monotonic() - written_at < SYNC_SECONDS, (
                f"{text!r} not on {url} after {SYNC_SECONDS}s"
            )
            page.wait_for_timeout(300)

    organizations = f"{app.url}/admin/sandbox_pipedrive/organization/?{urlencode({'q': name})}"
    while True:
        wait_for_row(organizations, name)
        page.locator("#result_list tbody tr").filter(has_text=name).first.locator("th a").click()
        if json.loads(page.locator("#id_custom_fields").input_value()).get(field_code) == website:
            break
        assert time.monotonic() - written_at < SYNC_SECONDS, (
            f"no website on the organization after {SYNC_SECONDS}s"
        )
        page.wait_for_timeout(300)
    # The emulator shows custom fields as JSON in a small box: grown to its content for the screenshot.
    page.eval_on_selector("#id_custom_fields", "box => { box.style.height = box.scrollHeight + 'px'; }")
    shot("pipedrive-organization-with-website")
    deals = f"{app.url}/admin/sandbox_pipedrive/deal/?{urlencode({'q': number})}"
    seconds = wait_for_row(deals, "Awaiting payment")
    row = page.locator("#result_list tbody tr").first.inner_text()
    assert number in row and "Xero invoices: Awaiting payment" in row and name in row, row
    shot("pipedrive-deal-awaiting-payment")
    print(f"walk-through: organization and deal in Pipedrive {seconds:.1f}s after the invoice was written")
