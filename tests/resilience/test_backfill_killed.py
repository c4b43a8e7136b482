"""A backfill run by a real django-q2 worker, kill -9'd halfway through its invoices (while it writes
deals to the sandbox Pipedrive), the cluster started again as the run command's supervisor does: the
run resumes from its stored phase, page and position (not from the start), finishes, and every
contact and invoice is in Pipedrive exactly once, with no 429 from Xero."""

import math
import os
import random

from tests.resilience.stack import wait_for

CONTACTS, INVOICES, SAME, PERSON_EVERY = 120, 200, 24, 3
PAGE, CHUNK = 40, 10  # records per Xero page (3 pages of contacts, 5 of invoices), per saved chunk
# The kill comes in the third page of invoices (two done), at a deal chosen at random (the seed is
# printed; RESILIENCE_BACKFILL_KILL_SEED replays it), so mid-chunk at different places over runs.
SEED = int(os.environ.get("RESILIENCE_BACKFILL_KILL_SEED") or random.randrange(10**6))
KILL_AT_DEAL = 2 * PAGE + random.Random(SEED).randint(1, PAGE - 1)
CONTACT_PAGES, INVOICE_PAGES = math.ceil(CONTACTS / PAGE), math.ceil(INVOICES / PAGE)


def reads(state: dict, endpoint: str) -> int:
    return sum(state["xero_calls"].get(endpoint, {}).values())


def test_backfill_worker_killed_halfway_resumes_where_it_stood_and_writes_every_record_once(make_stack):
    # The task timeout (and so the time slice of a backfill task, 4/5 of it) is longer than the
    # scenario: the Xero pages read are the run's own, not a new slice's re-read of its current page.
    stack = make_stack(
        BACKFILL_PAGE_SIZE=PAGE, BACKFILL_CHUNK=CHUNK, BACKFILL_LEASE_SECONDS=10, Q_TIMEOUT=300, Q_RETRY=360
    )
    stack.prepare()
    existing = stack.admin(
        "seed_backfill", contacts=CONTACTS, invoices=INVOICES, same=SAME, person_every=PERSON_EVERY
    )["existing_organizations"]
    stack.start(clusters=1, backfill_upkeep=True)
    run_id = stack.admin("backfill_start")["run_id"]  # the admin's "Preview": a worker prepares it

    def state() -> dict:
        return stack.admin("backfill_state", run_id=run_id, existing=existing)

    previewed = wait_for(
        lambda: (s := state())["status"] == "previewed" and s, 120, 0.5, "the preview", state
    )
    plan = previewed["plan"]
    assert plan["organizations"]["name"] == SAME and plan["organizations"]["create"] == CONTACTS - SAME
    assert plan["persons"]["create"] == CONTACTS // PERSON_EVERY and plan["deals"]["create"] == INVOICES
    assert previewed["deals"] == 0 and previewed["organizations"] == SAME  # the preview wrote nothing

    stack.admin("backfill_confirm", run_id=run_id)  # the admin's "Confirm": a worker runs it
    halfway = stack.admin(
        "kill_backfill_midway", run_id=run_id, cluster_pid=stack.clusters[0].pid, phase="invoices",
        deals_at_least=KILL_AT_DEAL,
    )  # fmt: skip
    stack.kill_cluster(0)  # dead already: reaped
    # Killed halfway, while writing: the contacts done, some deals but not all, Pipedrive ahead of the
    # stored position (the chunk under way), the run still marked running by a worker that is gone.
    print(
        f"seed {SEED}: killed at {halfway['deals_at_kill']} deals in Pipedrive, stored position: invoices "
        f"page {halfway['page']} position {halfway['position']}; links {halfway['links']['deal']}"
    )
    assert halfway["status"] == "running" and halfway["phase"] == "invoices", halfway
    assert 0 < halfway["deals_at_kill"] < INVOICES and halfway["deals_at_kill"] > halfway["saved_at_kill"]
    # The watcher polls, so a worker near a page's end may have stored the next page before the kill.
    assert halfway["page"] >= KILL_AT_DEAL // PAGE + 1 and halfway["saved_at_kill"] >= 2 * PAGE, halfway
    assert halfway["links"]["organization"]["linked"] == CONTACTS, halfway

    stack.restart_cluster(0)  # as the run command's supervisor does; the upkeep hands the run on
    done = wait_for(lambda: (s := state())["status"] == "done" and s, 150, 1, "the backfill to finish", state)
    print(f"finished: {done['counts']}; Xero calls {done['xero_calls']}")

    # Resumed where it stood: the contacts' pages not read again (the catch-up pass's one call at most),
    # the invoices' pages from the stored one on (and the catch-up's call), and each record counted once
    # across the two workers.
    assert reads(done, "GET /Contacts") - reads(halfway, "GET /Contacts") < CONTACT_PAGES, done["xero_calls"]
    invoice_reads = reads(done, "GET /Invoices") - reads(halfway, "GET /Invoices")
    assert invoice_reads <= INVOICE_PAGES - halfway["page"] + 1 + 1 < INVOICE_PAGES, done["xero_calls"]
    assert done["counts"]["contacts"]["done"] == CONTACTS and done["counts"]["invoices"]["done"] == INVOICES

    # Exactly once: no organization, person or deal twice, one link per record, none left half-made, no
    # create sent twice to Pipedrive, the existing customers matched rather than duplicated.
    assert done["duplicated_organizations"] == [] and done["organizations"] == CONTACTS, done
    assert done["matched_existing"] == SAME, done
    assert done["duplicated_persons"] == [] and done["persons"] == CONTACTS // PERSON_EVERY, done
    assert done["duplicated_deals"] == [] and done["deals"] == INVOICES, done
    for kind, records in (
        ("organization", CONTACTS),
        ("person", CONTACTS // PERSON_EVERY),
        ("deal", INVOICES),
    ):
        links = done["links"][kind]
        assert links == {"linked": records, "distinct_records": records, "other_states": {}}, (kind, links)
    created = done["pipedrive_created"]
    assert created.get("POST /api/v2/organizations", 0) == CONTACTS - SAME, created
    assert created.get("POST /api/v2/persons", 0) == CONTACTS // PERSON_EVERY, created
    assert created.get("POST /api/v2/deals", 0) == INVOICES, created
    assert done["xero_429s"] == 0 and done["errors"] == 0, done
