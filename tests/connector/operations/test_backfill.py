"""Backfill against the sandboxes: preview == run, matching by normalized name, exactly once across a
killed worker, one active run per pair, pause/resume/cancel, and waiting for Xero's day limit to reset."""

import datetime as dt
import os
import time
from collections import Counter
from unittest import mock

import pytest
from django.db import IntegrityError, transaction

from audit.models import SyncRecord
from connector.clients.xero import XeroClient
from connector.errors import RateLimited
from connector.limits import budget, ratelimit
from connector.models import BackfillRun, DeferredJob
from connector.operations import backfill
from mapping.models import RecordLink
from sandbox import clock, counters
from sandbox.pipedrive.models import Organization
from sandbox.xero.models import XeroApp
from tests.connector.operations.backfill_seed import (
    contact_name,
    seed_contacts,
    seed_invoices,
    seed_organizations,
)
from tests.connector.sync.harness import SYNC_MARKS, SYNC_URLS

urlpatterns = SYNC_URLS
pytestmark = SYNC_MARKS

STAGES = ["Draft", "Awaiting approval", "Awaiting payment", "Part paid", "Paid", "Voided"]


class WorkerKilled(BaseException):
    """The worker process dies here (nothing in the connector catches it)."""


@pytest.fixture
def invoice_pipeline(sandbox, default_rules):
    return sandbox.add_pipeline("Xero invoices", STAGES)


@pytest.fixture
def no_queue(monkeypatch):
    """Runs are driven by the test (as a worker would), not inline by the sync task queue."""
    queued = []
    monkeypatch.setattr(backfill.control, "enqueue", queued.append)
    return queued


def previewed(pair, **kwargs) -> BackfillRun:
    run = backfill.start_preview(pair, **kwargs)
    run = backfill.run_preview(run.pk)
    assert run.status == BackfillRun.Status.PREVIEWED, run.state_message
    return run


def drive(run_id: int) -> BackfillRun:
    """Carry the run forward until it stops queueing itself (as workers would)."""
    for _ in range(50):
        backfill.run_backfill(run_id)
        run = BackfillRun.objects.get(pk=run_id)
        if run.status != BackfillRun.Status.QUEUED:
            return run
    raise AssertionError("the run never stopped")


def xero_429s(sandbox) -> int:
    snapshot = counters.snapshot("xero", str(sandbox.organisation.tenant_id))
    return sum(
        by_status.get(429, 0) + by_status.get("429", 0) for by_status in snapshot["by_endpoint"].values()
    )


def test_preview_then_run_matches_creates_and_settles_an_ambiguous_match(
    sync_pair, sandbox, invoice_pipeline, no_queue
):
    existing = sandbox.pipedrive_create("organization", {"name": "ACME LTD"})
    twin_a = sandbox.pipedrive_create("organization", {"name": "Twin & Co Limited"})
    twin_b = sandbox.pipedrive_create("organization", {"name": "twin and co ltd"})
    acme = sandbox.create_contact("Acme Limited", email="ann@acme.example", first_name="Ann", last_name="Lee")
    twin = sandbox.create_contact("Twin & Co Ltd")
    fresh = sandbox.create_contact("Fresh Ltd", email="bo@fresh.example", first_name="Bo", last_name="Ng")
    paid = sandbox.create_invoice(acme, amount=200)
    sandbox.pay(paid, 200)
    sandbox.create_invoice(twin, amount=50)
    voided = sandbox.create_invoice(fresh, amount=70)
    sandbox.void_invoice(voided)
    counters.reset()

    run = previewed(sync_pair)
    plan = run.plan
    assert plan["totals"] == {"contacts": 3, "invoices": 3, "payments": 1}
    assert plan["organizations"] == {"create": 1, "link": 0, "contact_id_field": 0, "name": 2, "ambiguous": 1}
    assert plan["persons"]["create"] == 2 and plan["deals"] == {
        "create": 2,
        "update": 0,
        "skip": 1,
        "fail": 0,
    }
    assert plan["notes"]["create"] == 1
    assert plan["estimate"]["pipedrive_tokens"] >= 5 * (1 + 2 + 2) + 10
    assert sandbox.counts().pipedrive_writes == 0  # the preview writes nothing
    [question] = run.ambiguities.all()
    assert question.contact_id == twin and {c["id"] for c in question.candidates} == {twin_a, twin_b}

    backfill.resolve(run, twin, "new")
    with pytest.raises(backfill.BackfillError):
        backfill.resolve(run, twin, "999999")  # not a candidate: refused, nothing changed
    backfill.confirm(run)
    run = drive(run.pk)
    assert run.status == BackfillRun.Status.DONE, run.state_message

    orgs = sandbox.organizations()
    assert len(orgs) == 3 + plan["organizations"]["create"] + 1  # + the "create new" answer
    acme_link = RecordLink.objects.get(pair=sync_pair, xero_type="contact", xero_id=acme)
    assert acme_link.pipedrive_id == existing  # matched by normalized name, not duplicated
    twin_link = RecordLink.objects.get(pair=sync_pair, xero_type="contact", xero_id=twin)
    assert twin_link.pipedrive_id not in (twin_a, twin_b)
    assert len(sandbox.persons()) == plan["persons"]["create"]
    assert len(sandbox.deals()) == plan["deals"]["create"]
    assert len(sandbox.notes()) == plan["notes"]["create"]
    assert run.created_records == {"organization": 2, "person": 2, "deal": 2, "note": 1}
    assert set(SyncRecord.objects.values_list("trigger", flat=True)) == {"backfill"}
    assert run.xero_calls == 9 and xero_429s(sandbox) == 0  # preview, run, catch-up: 3 pages each


def test_one_active_backfill_per_pair(sync_pair, sandbox, no_queue):
    backfill.start_preview(sync_pair)
    with pytest.raises(backfill.BackfillError, match="already under way"):
        backfill.start_preview(sync_pair)
    with pytest.raises(IntegrityError), transaction.atomic():  # the database itself refuses
        BackfillRun.objects.create(pair=sync_pair, status=BackfillRun.Status.QUEUED)
    with pytest.raises(backfill.BackfillError, match="future"):
        backfill.start_preview(sync_pair, since=dt.date.today() + dt.timedelta(days=2))


def test_pause_resume_and_cancel(sync_pair, sandbox, invoice_pipeline, no_queue):
    seed_contacts(sandbox.organisation, 30, person_every=0)
    run = previewed(sync_pair)
    backfill.confirm(run)
    backfill.pause(run)
    assert backfill.run_backfill(run.pk) == "paused"  # a paused run is left alone by workers
    assert sandbox.organizations() == []
    backfill.resume(run)
    assert drive(run.pk).status == BackfillRun.Status.DONE
    assert len(sandbox.organizations()) == 30
    with pytest.raises(backfill.BackfillError):
        backfill.cancel(run)  # already finished
    second = backfill.start_preview(sync_pair)
    backfill.cancel(second)
    assert BackfillRun.objects.get(pk=second.pk).status == BackfillRun.Status.CANCELLED


def test_a_rate_limit_that_outlasts_the_clients_wait_requeues_the_run_and_it_finishes(
    sync_pair, sandbox, invoice_pipeline, no_queue, monkeypatch
):
    seed_contacts(sandbox.organisation, 12, person_every=0)
    run = previewed(sync_pair)
    backfill.confirm(run)
    no_queue.clear()
    real_pages, limited = backfill.BackfillWorker.pages, []

    def pages_limited_once(worker, phase):
        if not limited:
            limited.append(phase)
            raise RateLimited(0)
        return real_pages(worker, phase)

    monkeypatch.setattr(backfill.BackfillWorker, "pages", pages_limited_once)
    backfill.run_backfill(run.pk)
    waiting = BackfillRun.objects.get(pk=run.pk)
    assert (waiting.status, waiting.state_message) == (
        BackfillRun.Status.QUEUED,
        "Waiting a moment for a rate limit.",
    )
    assert no_queue == [run.pk]  # handed on to a worker, not lost
    assert drive(run.pk).status == BackfillRun.Status.DONE
    assert len(sandbox.organizations()) == 12  # every contact once


# The size (2,000 contacts, 5,000 invoices, 1,500 organizations of which 500 the same customers)
# with BACKFILL_TEST_FULL_SIZE=1; by default a fifth of it, same proportions, to keep the suite's time
# bounded on two cores (the full size takes minutes there; its figures are in bench/README.md).
SCALE = 1 if os.environ.get("BACKFILL_TEST_FULL_SIZE") == "1" else 5
CONTACTS, INVOICES, EXISTING, SAME = 2000 // SCALE, 5000 // SCALE, 1500 // SCALE, 500 // SCALE


def test_backfill_with_existing_organizations_killed_halfway_yields_every_record_exactly_once(
    sync_pair, sandbox, invoice_pipeline, no_queue, settings, monkeypatch
):
    """Organizations already in Pipedrive, a quarter of them the same customers under another spelling
    of their legal suffix: those are matched, the rest created, every record once, across a kill."""
    settings.BACKFILL_PAGE_SIZE = INVOICES // 10
    settings.BACKFILL_SLICE_SECONDS = 3600
    settings.PIPEDRIVE_DAILY_TOKENS = 10_000_000
    company = sandbox.company
    contacts = seed_contacts(sandbox.organisation, CONTACTS, person_every=10)
    seed_invoices(sandbox.organisation, contacts, INVOICES)
    same = [contact_name(n).replace("Limited", "LTD").upper() for n in range(0, CONTACTS, 4)]
    others = [f"Prospect {n} Pty" for n in range(EXISTING - SAME)]
    assert len(same) == SAME
    seed_organizations(company, sandbox.caller.user, same + others)
    before = set(Organization.objects.filter(company=company).values_list("id", flat=True))
    _lift_budget(sandbox)

    run = previewed(sync_pair)
    plan = run.plan
    assert plan["organizations"]["name"] == SAME and plan["organizations"]["create"] == CONTACTS - SAME
    assert plan["organizations"]["ambiguous"] == 0 and plan["persons"]["create"] == CONTACTS // 10
    assert plan["deals"]["create"] == INVOICES

    calls = {"n": 0}
    real_get_page = XeroClient.get_page

    def dies_at_the_sixth_invoice_page(self, resource, page, *args, **kwargs):
        if resource == "Invoices" and page == 6:
            calls["n"] += 1
            if calls["n"] == 1:
                raise WorkerKilled
        return real_get_page(self, resource, page, *args, **kwargs)

    monkeypatch.setattr(XeroClient, "get_page", dies_at_the_sixth_invoice_page)
    backfill.confirm(run)
    with pytest.raises(WorkerKilled):
        backfill.run_backfill(run.pk)
    halfway = BackfillRun.objects.get(pk=run.pk)
    assert halfway.status == BackfillRun.Status.RUNNING  # as a killed worker leaves it
    assert (halfway.phase, halfway.page, halfway.position) == ("invoices", 6, 0)
    assert len(sandbox.deals()) == INVOICES // 2

    settings.BACKFILL_LEASE_SECONDS = 0  # the dead worker's lease has run out
    assert backfill.resume_stalled_runs() == [run.pk]
    run = drive(run.pk)
    assert run.status == BackfillRun.Status.DONE, run.state_message

    orgs = Organization.objects.filter(company=company, is_deleted=False)
    new_orgs = orgs.exclude(id__in=before)
    assert new_orgs.count() == plan["organizations"]["create"] == CONTACTS - SAME
    links = RecordLink.objects.filter(pair=sync_pair, xero_type="contact", pipedrive_type="organization")
    assert links.count() == CONTACTS and links.values("pipedrive_id").distinct().count() == CONTACTS
    matched = links.filter(pipedrive_id__in=before)
    assert matched.count() == SAME  # the same customers, matched by normalized name, not duplicated
    assert Counter(o.name for o in new_orgs).most_common(1)[0][1] == 1
    assert len(sandbox.persons()) == plan["persons"]["create"] == CONTACTS // 10
    deals = sandbox.deals()
    assert len(deals) == plan["deals"]["create"] == INVOICES
    assert len({d["title"] for d in deals}) == INVOICES  # one deal per invoice, none twice
    deal_links = RecordLink.objects.filter(pair=sync_pair, xero_type="invoice", pipedrive_type="deal")
    assert deal_links.count() == INVOICES
    assert run.counts["contacts"]["done"] == CONTACTS and run.counts["invoices"]["done"] == INVOICES
    assert xero_429s(sandbox) == 0


def _lift_budget(sandbox):
    """The company's plan is large enough for a backfill of thousands in one day."""
    company = sandbox.company
    company.daily_budget_override = 10_000_000
    company.save(update_fields=["daily_budget_override"])


def test_xero_day_limit_nearly_spent_waits_for_the_reset_without_a_429(
    sync_pair, sandbox, invoice_pipeline, no_queue, settings, monkeypatch
):
    settings.BACKFILL_PAGE_SIZE = 10
    settings.BACKFILL_CHUNK = 10
    settings.BACKFILL_XERO_DAY_RESERVE = 0
    contacts = seed_contacts(sandbox.organisation, 40, person_every=0)
    seed_invoices(sandbox.organisation, contacts, 20)
    run = previewed(sync_pair)  # 4 + 2 + 1 pages
    app = XeroApp.objects.get(client_id=sync_pair.xero_connection.client_id)
    app.day_limit = run.xero_calls + 5  # the tenant's day: room for five more calls
    app.save(update_fields=["day_limit"])
    backfill.confirm(run)
    run = drive(run.pk)
    assert run.status == BackfillRun.Status.WAITING
    assert "daily limit" in run.state_message and run.resume_at is not None
    job = DeferredJob.objects.get(func=backfill.RESUME_FUNC, status=DeferredJob.Status.WAITING)
    assert job.args == [run.pk] and job.run_after == run.resume_at
    assert 0 < len(sandbox.organizations()) < 40
    assert budget.run_due_jobs() == 0  # not yet: the reset is still ahead

    # A day later (scaled time in the sandbox; the connector's limits' clock moved to the reset).
    clock.advance(86400 / clock.scale())
    later = time.time() + 86400
    monkeypatch.setattr(ratelimit, "time", mock.Mock(wraps=time, **{"time.return_value": later}))
    assert budget.run_due_jobs() == 1
    assert BackfillRun.objects.get(pk=run.pk).status == BackfillRun.Status.QUEUED
    run = drive(run.pk)
    assert run.status == BackfillRun.Status.DONE, run.state_message
    assert len(sandbox.organizations()) == 40 and len(sandbox.deals()) == 20
    assert xero_429s(sandbox) == 0
