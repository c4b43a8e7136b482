"""Send the sandbox's due webhook deliveries, once or in a loop (a separate process for benchmarks)."""

import time

from django.core.management.base import BaseCommand

from sandbox import webhooks


class Command(BaseCommand):
    help = "Send the sandbox's due webhook deliveries; --loop keeps polling until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sending until interrupted.")
        parser.add_argument("--interval", type=float, default=0.5, help="Seconds between polls with --loop.")
        parser.add_argument("--limit", type=int, default=100, help="Deliveries per round.")

    def handle(self, *args, loop=False, interval=0.5, limit=100, **options):
        try:
            while True:
                sent = webhooks.deliver_pending(limit)
                if sent or not loop:
                    self.stdout.write(f"sent {sent} webhook deliveries")
                if not loop:
                    return
                if sent < limit:  # a full round means more are waiting: go again at once
                    time.sleep(interval)
        except KeyboardInterrupt:
            return
