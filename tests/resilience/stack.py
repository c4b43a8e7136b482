"""A running connector for the resilience tests: real processes on free ports of 127.0.0.1.

One ``Stack`` is a temporary data folder (its own SQLite file, or its own PostgreSQL database), the
web server under gunicorn (the connector's webhook receivers and the embedded sandbox, which the
connector reaches over HTTP as it would reach Xero and Pipedrive), one or more django-q2 clusters
(``manage.py qcluster``, each in its own session so the test can kill it with -9), and the inbox
sweep in a loop (the every-minute schedule, run every second: tests cannot wait minutes), and, when
asked, the backfill upkeep likewise. Timings
are scaled down (task timeout 30 s, claim lease 8 s, first retry after 2 s) so lost work comes back
within a scenario.

Private PostgreSQL and Redis servers (``PrivatePostgres``, ``PrivateRedis``) run from a temporary
folder on a free port, for the scenarios that restart them; the shared servers are never touched.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Path(__file__).resolve().parent / "stack_admin.py"
WEBHOOK_KEY = "resilience-webhook-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, step: float = 0.5, what: str = "the condition", describe=None):
    """Poll ``condition`` until it returns something true; AssertionError after ``timeout`` seconds
    (saying what ``describe()`` returns then, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{seen}")
        time.sleep(step)


def _stop_group(process: subprocess.Popen, sig=signal.SIGTERM, grace: float = 10) -> None:
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of a group whose leader died
        return
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            # The leader only: it stops its own children (a django-q2 cluster whose children are
            # signalled as well hangs until the grace runs out); leftovers are killed below.
            os.kill(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --------------------------------------------------------------------------- private servers


def _pg_tool(name: str) -> str | None:
    """A PostgreSQL server tool: on PATH, else in Debian's versioned folder (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(candidates[-1]) if candidates else None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PrivatePostgres:
    """A PostgreSQL server of our own (initdb + pg_ctl) in a temporary folder, on a free port."""

    def __init__(self, folder: Path):
        self.folder = folder / "pgdata"
        self.port = free_port()
        self.log = folder / "postgres.log"

    @staticmethod
    def available() -> bool:
        return bool(_pg_tool("initdb") and _pg_tool("pg_ctl"))

    def _as_owner(self, command: list[str]) -> list[str]:
        """PostgreSQL refuses to run as root: as root, run its tools as the ``postgres`` (else ``nobody``)
        user, owner of the server's folder."""
        if os.geteuid() != 0:
            return command
        user = "postgres" if _user_exists("postgres") else "nobody"
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        top = Path(tempfile.gettempdir())
        for path in (self.folder.parent, *self.folder.parent.parents):
            if path in (top, top.parent):
                break
            os.chmod(path, os.stat(path).st_mode | 0o011)  # noqa: S103 (others may enter, not list)
        shutil.chown(self.folder.parent, user)
        return ["runuser", "-u", user, "--", *command]

    def start(self) -> PrivatePostgres:
        if not self.folder.exists():
            initdb = [_pg_tool("initdb"), "-D", str(self.folder), "-U", "postgres", "--auth=trust"]
            subprocess.run(
                self._as_owner([*initdb, "-E", "UTF8"]), check=True, capture_output=True, timeout=120
            )
            with open(self.folder / "postgresql.conf", "a") as conf:  # root may write it
                conf.write(
                    f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                )
                conf.write(
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
                )
            self._ctl("start", "-w", "-l", str(self.log))
        else:
            self._ctl("start", "-w", "-l", str(self.log))
        return self

    def database(self, name: str, template: str = "") -> str:
        """A new database on this server (a copy of ``template`` when given); its URL."""
        sql = f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        subprocess.run(
            [sys.executable, "-c", f"import psycopg; c = psycopg.connect('postgresql://postgres@127.0.0.1:"
             f"{self.port}/postgres', autocommit=True); c.execute('{sql}')"],
            check=True, timeout=60,
        )  # fmt: skip
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _ctl(self, *args) -> None:
        command = self._as_owner([_pg_tool("pg_ctl"), "-D", str(self.folder), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def restart(self) -> None:
        """Stop it hard (``-m immediate``: every connection cut, as in a crash), then start it again."""
        self._ctl("stop", "-m", "immediate", "-w")
        self._ctl("start", "-w", "-l", str(self.log))

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._ctl("stop", "-m", "immediate", "-w")


class PrivateRedis:
    """A Redis server of our own on a free port, no persistence."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("redis-server"))

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(self._answers, 20, 0.1, "redis-server to answer")
        return self

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def restart(self) -> None:
        """Kill it (-9: whatever it held is gone, as in a crash) and start a new one on the same port."""
        _stop_group(self.process, signal.SIGKILL)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, signal.SIGKILL)


# --------------------------------------------------------------------------- the stack


class Stack:
    """The connector and the sandbox as running processes; see the module docstring."""

    def __init__(self, folder: Path, database_url: str = "", redis_url: str = "", **settings):
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        sandbox = f"{self.base}/sandbox"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CONNECTOR_DATA_DIR": str(folder),
            "DJANGO_DEBUG": "1",
            "SANDBOX_ENABLED": "1",
            "SANDBOX_WEBHOOK_AUTODELIVER": "0",
            "SANDBOX_CONTROL_TOKEN": secrets.token_urlsafe(24),  # sent by get_json / post_json
            "PUBLIC_BASE_URL": self.base,
            "XERO_AUTHORIZE_URL": f"{sandbox}/xero/login/identity/connect/authorize",
            "XERO_IDENTITY_URL": f"{sandbox}/xero/identity",
            "XERO_CONNECTIONS_URL": f"{sandbox}/xero/api/connections",
            "XERO_API_URL": f"{sandbox}/xero/api/api.xro/2.0",
            "PIPEDRIVE_API_URL": f"{sandbox}/pipedrive",
            "PIPEDRIVE_OAUTH_URL": f"{sandbox}/pipedrive/oauth",
            "PIPEDRIVE_BURST_LIMIT": "100000",
            "WEBHOOK_RATE_LIMIT_PER_MINUTE": "0",  # every delivery, three times over, from 127.0.0.1
            "PIPEDRIVE_DAILY_TOKENS": "10000000",
            "Q_TIMEOUT": "30",
            "Q_RETRY": "40",
            "Q_WORKERS": "2",
            "INBOX_CLAIM_LEASE_SECONDS": "8",
            "INBOX_SWEEP_AFTER_SECONDS": "3",
            "INBOX_DRAIN_SECONDS": "6",
            "INBOX_RETRY_DELAY_SECONDS": "2",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in settings.items()},
        }
        self.env.pop("FIELD_ENCRYPTION_KEY", None)
        self.env.pop("SECRET_KEY", None)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.migrated = False  # set when the folder or database was copied from a migrated template
        self.web: subprocess.Popen | None = None
        self.clusters: list[subprocess.Popen] = []
        self.sweeper: subprocess.Popen | None = None
        self.upkeep: subprocess.Popen | None = None
        self.pair_keys: list[str] = []
        self.tenant_id = ""
        self._log = open(folder / "stack.log", "ab")  # noqa: SIM115 (the processes write to it until stop)

    # --- set-up and administration (in the stack's own environment) ---------------------------
    def manage(self, *args: str, timeout: float = 300) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, timeout=timeout,
            stdout=self._log, stderr=self._log,
        )  # fmt: skip

    def admin(self, command: str, timeout: float = 300, **arguments):
        result = subprocess.run(
            [sys.executable, str(ADMIN), command, json.dumps(arguments)], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode:
            raise AssertionError(f"stack_admin {command} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def migrate(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("createcachetable", "-v0")
        self.migrated = True

    def prepare(self, pairs: int = 1, contacts: int = 0, prefix: str = "Resilient") -> list[str]:
        if not self.migrated:
            self.migrate()
        answer = self.admin("setup", pairs=pairs, contacts=contacts, prefix=prefix)
        self.pair_keys, self.tenant_id = answer["pair_keys"], answer["tenant_id"]
        return answer["contact_ids"]

    def state(self) -> dict:
        return self.admin("state")

    # --- processes ------------------------------------------------------------------------------
    def _spawn(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self._log, stderr=self._log, start_new_session=True
        )

    def start(self, clusters: int = 1, backfill_upkeep: bool = False) -> Stack:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.web = self._spawn(
            [gunicorn, "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2", "--threads", "4",
             "--timeout", "60", "--log-level", "warning"]
        )  # fmt: skip
        wait_for(self._web_answers, 60, 0.3, "the web server to answer")
        for _ in range(clusters):
            self.start_cluster()
        self.sweeper = self._spawn([sys.executable, str(ADMIN), "sweeper", "1"])
        if backfill_upkeep:  # the every-minute schedule that resumes a dead worker's backfill, every second
            self.upkeep = self._spawn([sys.executable, str(ADMIN), "upkeep", "1"])
        return self

    def _web_answers(self) -> bool:
        try:
            request = urllib.request.Request(
                f"{self.base}/sandbox/xero/_counters", headers=self.control_headers
            )
            return urllib.request.urlopen(request, timeout=3).status == 200
        except OSError:
            return False

    def start_cluster(self) -> subprocess.Popen:
        cluster = self._spawn([sys.executable, "manage.py", "qcluster"])
        self.clusters.append(cluster)
        return cluster

    def kill_cluster(self, index: int) -> None:
        """kill -9 the cluster's every process (its main process and its workers), mid-task or not."""
        cluster = self.clusters[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()

    def restart_cluster(self, index: int) -> None:
        """kill -9 the cluster, then start a new one in its place (what the run command's supervisor does)."""
        self.kill_cluster(index)
        self.clusters[index] = self._spawn([sys.executable, "manage.py", "qcluster"])

    def cluster_workers(self, index: int) -> list[int]:
        """The pids of the cluster's worker processes (its session, less its main process)."""
        leader = self.clusters[index].pid
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == leader:
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) == leader:  # session id
                    pids.append(int(entry))
        return pids

    def stop(self) -> None:
        for process in [*self.clusters, self.sweeper, self.upkeep, self.web]:
            if process is not None:
                _stop_group(process)
        self._log.close()

    def log_tail(self, size: int = 4000) -> str:
        with open(self.folder / "stack.log", "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - size))
            return log.read().decode(errors="replace")

    # --- HTTP: webhooks in, sandbox switches and counters --------------------------------------
    def xero_event(self, contact_id: str, when: dt.datetime, event_type: str = "UPDATE") -> dict:
        return {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{contact_id}",
            "resourceId": contact_id,
            "eventDateUtc": when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds"),
            "eventType": event_type,
            "eventCategory": "CONTACT",
            "tenantId": self.tenant_id,
            "tenantType": "ORGANISATION",
        }

    def deliver(self, events: list[dict], pair: int = 0, attempts: int = 20) -> None:
        """POST one signed Xero batch; a refused or failed delivery is sent again, as Xero does."""
        body = json.dumps(
            {"events": events, "firstEventSequence": 1, "lastEventSequence": len(events),
             "entropy": uuid.uuid4().hex[:20]},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        signature = base64.b64encode(hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).digest()).decode()
        request = urllib.request.Request(
            f"{self.base}/webhooks/xero/{self.pair_keys[pair]}/", data=body, method="POST",
            headers={"Content-Type": "application/json", "x-xero-signature": signature},
        )  # fmt: skip
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(min(0.5 * 2**attempt, 3))
        raise AssertionError("the connector never accepted a webhook delivery")

    @property
    def control_headers(self) -> dict[str, str]:
        """What the sandbox's control endpoints want from a script (sandbox/control.py)."""
        return {"X-Sandbox-Token": self.env["SANDBOX_CONTROL_TOKEN"]}

    def get_json(self, path: str) -> dict:
        request = urllib.request.Request(f"{self.base}{path}", headers=self.control_headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def post_json(self, path: str, data: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base}{path}", data=json.dumps(data).encode(), method="POST",
            headers={"Content-Type": "application/json", **self.control_headers},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
