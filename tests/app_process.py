"""Starting the app with the README's run command, in other processes (the walk-through, the fresh clone).

``scripts/run.sh`` itself (migrations, the first admin user, the sandbox seeds, then the web server and
the task workers under ``runconnector``), on a free port, with its own data folder, and on PostgreSQL a
database of its own, created empty and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 240  # migrations and the sandbox's demo data on a fresh database, on a busy 2-core machine
STOP_SECONDS = 30

# Settings the test process has (pytest's, the test settings' fixed keys) that a first run must not inherit.
INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "FIELD_ENCRYPTION_KEY",
    "SECRET_KEY",
    "CONNECTOR_DATA_DIR",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "XERO_AUTHORIZE_URL",
    "XERO_IDENTITY_URL",
    "XERO_CONNECTIONS_URL",
    "XERO_API_URL",
    "PIPEDRIVE_API_URL",
    "PIPEDRIVE_OAUTH_URL",
    "SANDBOX_ENABLED",
    "SANDBOX_DEMO_PAIR",
    "SANDBOX_CONTROL_TOKEN",
    "ADMIN_PASSWORD",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen

    def login(self) -> tuple[str, str]:
        """The first admin user's name and password, as the run command wrote them."""
        lines = dict(
            line.split(": ", 1)
            for line in (self.data_dir / "first-run-login.txt").read_text().splitlines()[1:]
        )
        return lines["username"], lines["password"]

    def sandbox_credentials(self) -> str:
        return (self.data_dir / "sandbox-credentials.txt").read_text()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def fresh_database():
    """On PostgreSQL (DATABASE_URL set): an empty database of our own, dropped afterwards. Else SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield None
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_run_command_{os.getpid()}"
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_for_admin(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"The run command exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if requests.get(f"{url}/admin/login/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"The admin did not answer within {START_SECONDS}s:\n{log.read_text()[-3000:]}")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children in their own sessions included), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ")".
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie has stopped; only its parent's wait is missing
            living.add(pid)
    return living


def command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def ctrl_c(process: subprocess.Popen) -> None:
    """What Ctrl-C in a terminal does: SIGINT to the foreground process group (the command's own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)


def stop(process: subprocess.Popen) -> int:
    """Ctrl-C, as a person stops the run command; all killed (with a failing code) if it does not stop."""
    tree = descendants(process.pid)
    if process.poll() is None:
        ctrl_c(process)
    try:
        return process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        for pid in alive(tree | {process.pid}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        return -9


@contextlib.contextmanager
def run_command(
    tmp_path: Path,
    *,
    demo_pair: bool = False,
    cwd: Path = ROOT,
    command=("bash", "scripts/run.sh"),
    venv=None,
    extra_env: dict[str, str] | None = None,
):
    """The run command in ``cwd`` with the sandbox on, in its own process group as a terminal would start
    it; yields a RunningApp once the admin answers; stops it with Ctrl-C. ``extra_env`` is set on top
    (e.g. ``REQUIRE_2FA=1``)."""
    with fresh_database() as database_url:
        port = free_port()
        data_dir = tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if k not in INHERITED}
        env.update(
            CONNECTOR_DATA_DIR=str(data_dir),
            CONNECTOR_PORT=str(port),
            SANDBOX_DEMO_PAIR="1" if demo_pair else "0",
            # The test's own environment, already installed: the bootstrap finds it up to date.
            VENV=venv or sys.prefix,
            # A queue name of our own: on a shared Redis, no other run's tasks reach these workers.
            Q_CLUSTER_NAME=f"run-command-{port}",
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        env.update(extra_env or {})
        log = tmp_path / "run.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                list(command), cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
            )
        app = RunningApp(f"http://127.0.0.1:{port}", data_dir, log, process)
        try:
            _wait_for_admin(app.url, process, log)
            yield app
        finally:
            began = time.monotonic()
            code = stop(process)
            print(f"run command stopped in {time.monotonic() - began:.1f}s with exit code {code}")
