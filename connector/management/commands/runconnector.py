"""Run the web server and the django-q2 cluster together, in the foreground (connector.management.supervisor):
a process that dies is restarted after a back-off; Ctrl-C stops both."""

import os
import signal
import sys

from django.core.management.base import BaseCommand

from connector.management.supervisor import Supervisor


class Command(BaseCommand):
    help = "Run the web server and the task workers together (restarted if they die); Ctrl-C stops both."
    requires_system_checks = []  # the children run the checks themselves

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("CONNECTOR_HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("CONNECTOR_PORT", "8000"))

    def handle(self, *args, addr, port, **options):
        manage = [sys.executable, "manage.py"]
        commands = {
            "web server": [*manage, "runserver", "--noreload", f"{addr}:{port}"],
            "worker": [*manage, "qcluster"],
        }

        def log(message):
            self.stdout.write(message)
            self.stdout.flush()

        supervisor = Supervisor(commands, log)
        signal.signal(signal.SIGINT, supervisor.request_stop)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        sys.exit(supervisor.run())
