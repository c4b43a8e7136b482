"""Keeping the run command's processes up: the web server and the task workers.

Each child runs in its own session and only its main process gets SIGTERM on stop, so django-q2's
cluster finishes its current task and stops in about a second (a Procfile runner signals the whole
process group, and the cluster hangs when its children are killed under it). A child that dies is
started again after a back-off (1, 2, 4 … seconds, at most ``MAX_BACKOFF``; back to 1 once it has
run ``STEADY_SECONDS``), and the others keep running: one dead worker must not take webhook intake
down with it.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STOP_GRACE_SECONDS = 30
MAX_BACKOFF = 30.0
STEADY_SECONDS = 60.0
POLL_SECONDS = 0.2


@dataclass
class Child:
    """One supervised process: its command, the running process, and its restart state."""

    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    restart_at: float | None = None  # when a dead child is due to start again
    env: dict | None = field(default=None, repr=False)


class Supervisor:
    """Start the children, restart any that dies, stop them all on request."""

    def __init__(self, commands: dict[str, list[str]], log: Callable[[str], None], env: dict | None = None):
        self.children = [Child(name, command, env=env) for name, command in commands.items()]
        self.log = log
        self.stopping = False

    def request_stop(self, *_args) -> None:
        self.stopping = True

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.command, start_new_session=True, env=child.env)  # noqa: S603
        child.started_at = time.monotonic()
        child.restart_at = None

    def check(self) -> None:
        """One pass: schedule a restart for each child that died, start those that are due."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.log(f"Restarting the {child.name} (restart {child.restarts}).")
                    self._start(child)
                continue
            code = child.process.poll() if child.process else None
            if code is None:
                continue
            self._kill_leftovers(child)
            if now - child.started_at >= STEADY_SECONDS:
                child.backoff = 1.0  # it ran fine for a while: this is a new failure, not a crash loop
            delay = child.backoff
            child.backoff = min(child.backoff * 2, MAX_BACKOFF)
            child.restart_at = now + delay
            self.log(
                f"The {child.name} exited with code {code}; restarting it in {delay:g}s "
                f"(the other processes keep running)."
            )

    @staticmethod
    def _kill_leftovers(child: Child) -> None:
        """A cluster killed with -9 leaves its worker processes behind, idle but alive: end its session."""
        if child.process is None:  # never started: nothing can be left behind
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)

    def run(self) -> int:
        """Until asked to stop (SIGINT/SIGTERM): start, watch, restart; then stop every child."""
        for child in self.children:
            self._start(child)
        while not self.stopping:
            self.check()
            time.sleep(POLL_SECONDS)
        self.stop()
        return 0

    def stop(self) -> None:
        self.log("Stopping the web server and the workers...")
        running = [(c, c.process) for c in self.children if c.process and c.process.poll() is None]
        for _child, process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child, process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"The {child.name} did not stop within {STOP_GRACE_SECONDS}s; killing it.")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.log("Stopped.")
