"""Links to Pipedrive and Xero are built from a fixed scheme and host; a stored company domain only
fills in the subdomain, and only when it is one DNS label."""

import pytest
from django.utils import timezone

from audit import story
from audit.services import record_sync
from connector.models import SyncPair
from mapping.rules import pipedrive_url, xero_url

pytestmark = pytest.mark.django_db

NOT_A_LABEL = [
    "javascript://alert(1)",
    "javascript:alert(1)",
    "https://evil.example",
    "evil.example",
    "evil.example/x",
    "acme.pipedrive.com",
    "-acme",
    "a b",
    "",
]


@pytest.mark.parametrize("domain", NOT_A_LABEL)
def test_a_domain_that_is_not_one_label_gives_no_link(domain):
    assert pipedrive_url(domain, "deal/5") == ""


def test_a_label_gives_a_link_on_pipedrive():
    assert pipedrive_url("Acme-2", "organization/5") == "https://acme-2.pipedrive.com/organization/5"


def test_xero_links_keep_their_host():
    assert xero_url("contact", "x/../../evil?a=1").startswith("https://go.xero.com/Contacts/View/")
    assert "/" not in xero_url("contact", "x/../evil").removeprefix("https://go.xero.com/Contacts/View/")


@pytest.fixture
def record(xero_connection, pipedrive_api_token_connection):
    pair = SyncPair.objects.create(
        name="P", xero_connection=xero_connection, pipedrive_connection=pipedrive_api_token_connection
    )
    return record_sync(
        pair=pair,
        xero_type="contact",
        xero_id="c-1",
        outcome="created",
        started_at=timezone.now(),
        pipedrive_type="organization",
        pipedrive_id=5,
    )


@pytest.mark.parametrize("domain", ["javascript://alert(1)", "https://evil.example"])
def test_the_story_page_renders_no_link_for_a_bad_company_domain(admin_client, record, domain):
    connection = record.pair.pipedrive_connection
    connection.company_domain = domain
    connection.save()
    assert story.pipedrive_link(record) == ""
    page = admin_client.get(f"/admin/audit/syncrecord/{record.pk}/change/")
    assert page.status_code == 200
    assert (
        b'href="javascript:' not in page.content and b"evil.example" not in page.content.split(b"<body")[-1]
    )


def test_the_story_page_links_a_valid_company_domain(admin_client, record):
    connection = record.pair.pipedrive_connection
    connection.company_domain = "acme"
    connection.save()
    page = admin_client.get(f"/admin/audit/syncrecord/{record.pk}/change/")
    assert b'href="https://acme.pipedrive.com/organization/5"' in page.content
