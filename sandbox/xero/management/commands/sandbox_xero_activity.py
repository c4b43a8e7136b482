"""Simulate a finance team at work in the sandbox Xero: new customers, invoices and payments.

Every write goes through the same functions as the API, so webhooks fire and the connector
sees the changes as it would in a real organisation.
"""

import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sandbox.xero import services
from sandbox.xero.models import Organisation


class Command(BaseCommand):
    help = "Create sandbox Xero activity (customers, invoices, payments) every few seconds, for demos."

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation", help="Organisation name (default: the first demo organisation)."
        )
        parser.add_argument("--count", type=int, default=10, help="How many steps to run (0 = forever).")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between steps.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable runs.")

    def handle(self, *args, organisation, count, interval, seed, **options):
        services.ensure_demo_app()
        name = organisation or services.DEMO_ORGANISATIONS[0]
        org = Organisation.objects.filter(name=name).first()
        if not org:
            raise CommandError(f"No sandbox organisation named {name!r}")
        chooser = random.Random(seed)  # noqa: S311 (demo data, not security)
        step = 0
        while count == 0 or step < count:
            step += 1
            with transaction.atomic():
                self.stdout.write(f"{step}: {services.demo_activity_step(org, chooser)}")
            if interval and (count == 0 or step < count):
                time.sleep(interval)
