"""Pipedrive's official Node client (npm ``pipedrive``, API v2) against the sandbox on a live server.

tests/sdk/pipedrive_node/roundtrip.js writes organizations, persons, deals, a pipeline, a stage and
custom fields with the client, reads each back with it, lists and searches, and prints a JSON
report; this test checks the report and that what the client wrote is in the sandbox's database.
The script also lists every property the client's typed models declare that an answer lacked.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.pipedrive import services
from sandbox.pipedrive.models import CustomField, Deal, Entity, Organization, Person, Pipeline, Stage
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "sdk" / "pipedrive_node"
LOG = ROOT / "var" / "npm-pipedrive-sdk.log"
PINNED = json.loads((PROJECT / "package.json").read_text())["dependencies"]["pipedrive"]
TAG = "sdk7q"


def _unavailable(reason: str):
    """Skip where Node is simply not installed; under CI the client must run, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI runs Pipedrive's Node client: {reason}")
    pytest.skip(reason)


def _installed_version() -> str | None:
    manifest = PROJECT / "node_modules" / "pipedrive" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="module")
def node_client() -> str:
    """The node binary, with the pinned client installed from package-lock.json (npm ci) if missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed for Pipedrive's Node client (apt-get install nodejs npm)")
    if _installed_version() != PINNED:
        LOG.parent.mkdir(exist_ok=True)
        with LOG.open("w") as log:
            installed = subprocess.run(
                [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=PROJECT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if installed.returncode or _installed_version() != PINNED:
            _unavailable(f"npm ci in {PROJECT.relative_to(ROOT)} failed (see {LOG.relative_to(ROOT)})")
    return node


@pytest.fixture
def demo_company(db):
    company = services.ensure_demo_company()
    # One run makes ~50 calls within a few seconds; the limits have their own tests.
    company.burst_override = company.daily_budget_override = 10**6
    company.save()
    return company


def _run(node: str, base_url: str, token: str) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # the live server is local
    finished = subprocess.run(
        [node, str(PROJECT / "roundtrip.js"), base_url, TAG],
        env={**env, "PIPEDRIVE_API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(finished.stdout.strip().splitlines()[-1]) if finished.stdout.strip() else {}
    return finished.returncode, report, finished.stderr


def test_official_node_client_writes_and_reads_back_every_v2_object(node_client, live_server, demo_company):
    code, report, stderr = _run(node_client, f"{live_server.url}/sandbox/pipedrive", services.DEMO_API_TOKEN)
    assert code == 0, (
        json.dumps(
            {k: report.get(k) for k in ("failed_call", "error", "mismatches", "missing_model_properties")}
        )
        + stderr
    )
    assert report["sdk_version"] == PINNED
    assert report["mismatches"] == []
    # Every answer carried each property the client's typed models declare.
    assert report["missing_model_properties"] == {}

    org = Organization.objects.get(id=report["organization"]["id"])
    assert org.company == demo_company and org.name == report["organization"]["name"] == f"SDK Org {TAG} Ltd"

    person = Person.objects.get(id=report["person"]["id"])
    assert person.name == report["person"]["name"] == f"Ada {TAG} Lovelace"
    assert (report["person"]["first_name"], report["person"]["last_name"]) == ("Ada", f"{TAG} Lovelace")
    assert person.org_id == org.id == report["person"]["org_id"]
    assert person.attributes["emails"] == report["person"]["emails"]
    assert [e["value"] for e in person.attributes["emails"]] == [
        f"ada.{TAG}@example.com",
        f"ada.home.{TAG}@example.com",
    ]
    assert person.attributes["phones"] == report["person"]["phones"]

    pipeline = Pipeline.objects.get(id=report["pipeline"]["id"], company=demo_company)
    assert pipeline.name == report["pipeline"]["name"] and pipeline.is_deal_probability_enabled
    assert report["pipelines_listed"] == Pipeline.objects.filter(company=demo_company).count() == 2
    stage = Stage.objects.get(id=report["stage"]["id"])
    assert stage.pipeline == pipeline and stage.name == report["stage"]["name"]
    assert stage.deal_probability == report["stage"]["deal_probability"] == 35
    assert stage.days_to_rotten == report["stage"]["days_to_rotten"] == 12 and stage.is_deal_rot_enabled

    for entity, fields in report["fields"].items():
        custom = CustomField.objects.get(company=demo_company, field_code=fields["field_code"])
        assert (custom.entity, custom.field_name, custom.field_type) == (
            Entity(entity),
            fields["field_name"],
            "varchar",
        )
        assert custom.namespaces["important_fields"] == fields["important_fields"]
        assert custom.namespaces["important_fields"] == {"enabled": True, "stage_ids": [stage.id]}
        assert custom.namespaces["ui_visibility"] == fields["ui_visibility"]
        assert custom.namespaces["ui_visibility"]["add_visible_flag"] is False
    deal_field = CustomField.objects.get(field_code=report["fields"]["deal"]["field_code"])
    assert (
        deal_field.description
        == report["fields"]["deal"]["description"]
        == f"The invoice a deal stands for ({TAG})"
    )

    deal = Deal.objects.get(id=report["deal"]["id"])
    assert (deal.title, deal.org_id, deal.person_id, deal.stage_id) == (
        report["deal"]["title"],
        org.id,
        person.id,
        stage.id,
    )
    assert deal.status == report["deal"]["status"] == "won"
    assert (deal.attributes["value"], deal.attributes["currency"]) == (1500, "EUR")
    assert deal.attributes["expected_close_date"] == report["deal"]["expected_close_date"] == "2031-03-31"
    assert deal.custom_fields == report["deal"]["custom_fields"]
    assert report["deal"]["won_time"] and report["deal"]["close_time"] == report["deal"]["won_time"]
    assert services.serialize(deal)["won_time"] == report["deal"]["won_time"]

    hits = report["search"]
    assert (hits["organizations"], hits["persons"], hits["deals"]) == ([org.id], [person.id], [deal.id])
    assert hits["deal_hit"]["stage"]["id"] == stage.id and hits["deal_hit"]["status"] == "won"
    assert hits["items"] == [["deal", deal.id], ["organization", org.id], ["person", person.id]]
    assert hits["by_field"] == [{"id": deal.id, "name": deal.title}]


def test_official_node_client_reports_the_sandbox_error_for_a_bad_token(
    node_client, live_server, demo_company
):
    code, report, _ = _run(node_client, f"{live_server.url}/sandbox/pipedrive", "0" * 40)
    assert code == 1
    assert report["failed_call"] == "addOrganization"
    # The client rejects with the answer's body: Pipedrive's error envelope, read by the client.
    assert report["error"]["success"] is False and report["error"]["errorCode"] == 401
    assert not Organization.objects.exists()
