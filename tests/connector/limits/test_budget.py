"""A spent Pipedrive budget defers non-urgent work to the reset instead of calling (sandbox, live server)."""

import time
from unittest import mock

import pytest

from connector.clients.pipedrive import PipedriveClient
from connector.errors import BudgetExhausted
from connector.limits import budget, ratelimit
from connector.models import DeferredJob
from sandbox import counters
from sandbox import ratelimit as sandbox_limits
from sandbox.pipedrive import services
from tests.sandbox.conftest import SANDBOX_URLS

urlpatterns = SANDBOX_URLS
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def backfill_organizations(company_id, base_url):
    """A backfill-like job: reads every organization (list calls, 10 tokens a page)."""
    client = PipedriveClient(company_id, base_url, services.DEMO_API_TOKEN)
    return len(list(client.iter("organization", limit=1)))


@pytest.fixture
def pipedrive(live_server, settings):
    settings.REDIS_URL = ""
    settings.PIPEDRIVE_DAILY_TOKENS = 1000
    settings.PIPEDRIVE_BUDGET_RESERVE = 100
    company = services.ensure_demo_company()
    return {"company": company, "tenant": str(company.id), "url": f"{live_server.url}/sandbox/pipedrive"}


def test_spent_budget_defers_the_backfill_without_calling_and_reruns_it_after_the_reset(
    pipedrive, monkeypatch
):
    company_id = pipedrive["tenant"]
    ratelimit.PipedriveLimiter(company_id).spend(950)  # today's work so far: 50 left, under the reserve

    outcome, job = budget.run_deferrable(
        company_id, "Backfill organizations", backfill_organizations, company_id, pipedrive["url"]
    )

    assert outcome == "deferred"
    assert counters.snapshot("pipedrive", company_id)["calls"] == 0
    job.refresh_from_db()
    assert job.status == DeferredJob.Status.WAITING and "deferred to" in job.message
    assert job.run_after > ratelimit.now_dt()
    assert budget.run_due_jobs() == 0  # not before the reset

    later = job.run_after.timestamp() + 1
    monkeypatch.setattr(ratelimit, "time", mock.Mock(wraps=time, **{"time.return_value": later}))
    assert budget.run_due_jobs() == 1
    job.refresh_from_db()
    assert job.status == DeferredJob.Status.DONE and "re-run after the budget reset" in job.message
    assert counters.snapshot("pipedrive", company_id)["calls"] >= 1


def test_budget_spent_at_the_service_defers_mid_job(pipedrive):
    client = PipedriveClient(pipedrive["tenant"], pipedrive["url"], services.DEMO_API_TOKEN)
    for name in ("Acme Ltd", "Beta Traders", "Gamma Co"):
        client.create("organization", {"name": name})
    counters.reset("pipedrive")
    sandbox_limits.reset("pipedrive")  # a fresh day at the sandbox
    company = pipedrive["company"]
    company.daily_budget_override = 15  # the first page (10 tokens) passes, the second is refused
    company.save()

    outcome, job = budget.run_deferrable(
        pipedrive["tenant"],
        "Backfill organizations",
        backfill_organizations,
        pipedrive["tenant"],
        pipedrive["url"],
    )

    assert outcome == "deferred" and isinstance(job, DeferredJob)
    seen = counters.snapshot("pipedrive", pipedrive["tenant"])
    assert seen["by_status"] == {"200": 1, "429": 2}  # the refused call and its "LIMIT daily-tokens" row
    assert ratelimit.PipedriveLimiter(pipedrive["tenant"]).remaining("daily-tokens") == 0  # no hot retries


def test_urgent_work_is_never_deferred(pipedrive):
    company_id = pipedrive["tenant"]
    ratelimit.PipedriveLimiter(company_id).spend(1000)
    with pytest.raises(BudgetExhausted):
        budget.run_deferrable(
            company_id, "Webhook update", backfill_organizations, company_id, pipedrive["url"], urgent=True
        )
    assert DeferredJob.objects.count() == 0
    assert counters.snapshot("pipedrive", company_id)["calls"] == 0
