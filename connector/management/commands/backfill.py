"""``manage.py backfill <pair> [--dry-run] [--since DATE]``: preview, then run, a pair's backfill here."""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from connector.models import BackfillRun, SyncPair
from connector.operations import backfill

PLAN_LINES = [
    ("Organizations to create", "organizations", "create"),
    ("  matched by record link", "organizations", "link"),
    ("  matched by Xero ContactID field", "organizations", "contact_id_field"),
    ("  matched by normalized name", "organizations", "name"),
    ("  ambiguous (several candidates)", "organizations", "ambiguous"),
    ("Persons to create", "persons", "create"),
    ("  matched by link / e-mail / name", "persons", None),
    ("Deals to create", "deals", "create"),
    ("  deals to update", "deals", "update"),
    ("  invoices without a deal (voided, drafts off …)", "deals", "skip"),
    ("  invoices that would fail", "deals", "fail"),
    ("Payment notes to add", "notes", "create"),
]


class Command(BaseCommand):
    help = "Bring a sync pair's existing Xero contacts, invoices and payments across (preview first)."

    def add_arguments(self, parser):
        parser.add_argument("pair", help="The sync pair: its id or its name.")
        parser.add_argument("--dry-run", action="store_true", help="Only preview: write nothing.")
        parser.add_argument("--since", help="Only invoices and payments dated on or after (YYYY-MM-DD).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, pair, dry_run, since, no_progress, **options):
        found = SyncPair.objects.filter(Q(name=pair) | Q(pk=int(pair) if pair.isdigit() else None))
        target = found.first()
        if target is None:
            raise CommandError(f"No sync pair {pair!r}: give its id or its exact name.")
        since_day = None
        if since:
            try:
                since_day = dt.date.fromisoformat(since)
            except ValueError:
                raise CommandError(f"--since {since!r} is not a date: use YYYY-MM-DD.") from None
        run = backfill.active_run(target)
        try:
            if run is None:
                run = backfill.start_preview(target, since=since_day, requested_by="manage.py backfill")
        except backfill.BackfillError as exc:
            raise CommandError(str(exc)) from None
        if run.status == BackfillRun.Status.PREVIEWING:
            self.stdout.write(f"Previewing the backfill of {target} (reading Xero and the Pipedrive index)…")
            run = backfill.run_preview(run.pk)
            if run.status == BackfillRun.Status.FAILED:
                raise CommandError(run.state_message)
        if run.status == BackfillRun.Status.PREVIEWED:
            self.print_plan(run)
            if dry_run:
                self.stdout.write(
                    f"Dry run only: nothing written. Run without --dry-run (or confirm backfill #{run.pk} "
                    "in the admin) to start it; ambiguous matches can be settled in the admin first."
                )
                return
            run = backfill.confirm(run)  # a worker may pick it up; the command also drives it here
        elif dry_run:
            self.stdout.write(f"Backfill #{run.pk} is already {run.get_status_display().lower()}.")
            return
        if run.status in (BackfillRun.Status.PAUSED, BackfillRun.Status.WAITING):
            backfill.resume(run)
        self.drive(run.pk, no_progress)

    def print_plan(self, run):
        plan = run.plan
        totals = plan["totals"]
        self.stdout.write(
            f"Xero holds {totals['contacts']} contacts, {totals['invoices']} sales invoices, "
            f"{totals['payments']} payments."
        )
        for label, group, key in PLAN_LINES:
            value = plan[group][key] if key else sum(plan[group].get(k, 0) for k in ("link", "email", "name"))
            self.stdout.write(f"  {label:<52} {value:>8}")
        estimate = plan["estimate"]
        self.stdout.write(
            f"Estimated cost: {estimate['xero_calls']} Xero calls, {estimate['pipedrive_tokens']} Pipedrive "
            f"tokens ({estimate['pipedrive_tokens_left_today']} left today above the reserve), about "
            f"{estimate['seconds'] // 60} min {estimate['seconds'] % 60} s at the current limits "
            f"(bound by the {estimate['binding_limit']})"
            + (
                f", plus {estimate['days_waiting_for_budget']} day(s) waiting for budget resets."
                if estimate["days_waiting_for_budget"]
                else "."
            )
        )
        for problem in plan.get("problems", []):
            self.stdout.write(self.style.WARNING(f"  {problem}"))

    def drive(self, run_id: int, no_progress: bool):
        run = BackfillRun.objects.get(pk=run_id)
        bar = tqdm(total=backfill.progress(run)["total"] or None, unit="rec", disable=no_progress)
        done = 0

        def show(current):
            nonlocal done
            figures = backfill.progress(current)
            bar.total = figures["total"] or bar.total
            bar.update(figures["done"] - done)
            done = figures["done"]
            bar.set_postfix_str(
                f"{figures['phase']}, {figures['rate_per_minute']}/min, Xero {figures['xero_calls']}, "
                f"tokens {figures['pipedrive_tokens']}, errors {figures['errors']}"
            )

        while True:
            status = backfill.run_backfill(run_id)  # one slice; a no-op when a worker holds the run
            run = BackfillRun.objects.get(pk=run_id)
            if status == BackfillRun.Status.RUNNING:
                time.sleep(1)  # a worker holds the run: follow its progress
            show(run)
            if run.status in (BackfillRun.Status.QUEUED, BackfillRun.Status.RUNNING):
                continue
            break
        bar.close()
        figures = backfill.progress(run)
        self.stdout.write(
            f"Backfill #{run.pk}: {run.get_status_display()}. "
            f"{figures['done']} of {figures['total']} records, "
            f"created {figures['created']}, {figures['errors']} errors. {run.state_message}"
        )
