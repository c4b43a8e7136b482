"""Run the web server and the django-q2 cluster together, in the foreground.

Written by hand rather than with a Procfile runner: those signal the whole process
group, and django-q2's cluster hangs when its children are killed under it. Here each
child runs in its own session and only its main process gets SIGTERM, so the cluster
finishes its current task and stops in about a second.
"""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 30


class Command(BaseCommand):
    help = "Run the web server and the task workers together; Ctrl-C stops both."
    requires_system_checks = []  # the children run the checks themselves

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("CONNECTOR_HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("CONNECTOR_PORT", "8000"))

    def handle(self, *args, addr, port, **options):
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [*manage, "runserver", "--noreload", f"{addr}:{port}"],
            "worker": [*manage, "qcluster"],
        }
        children = {
            name: subprocess.Popen(command, start_new_session=True)  # noqa: S603 (our own manage.py)
            for name, command in commands.items()
        }
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping the others.")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)

        self.stdout.write("Stopping the web server and the workers...")
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop within {STOP_GRACE_SECONDS}s; killing it.")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("Stopped.")
        sys.exit(exit_code)
