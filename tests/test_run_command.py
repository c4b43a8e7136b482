"""The run command's supervisor: web and workers come up together, a dead one is restarted while the
others keep running, and Ctrl-C stops them all."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings

from connector.management.supervisor import Supervisor


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> dict[int, str]:
    """{pid: command line} of the live processes whose parent is ``pid`` (from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found[int(entry)] = command
    return found


def wait_for(condition, timeout=30.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def admin_status(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status
    except OSError:
        return None


def test_runconnector_serves_the_admin_runs_a_worker_and_stops_both_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "CONNECTOR_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEY", "SECRET_KEY"):
        env.pop(name, None)  # a private SQLite file and generated keys, as on a first run
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=settings.BASE_DIR, check=True, timeout=120)
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 (the child writes to it until the end)
    proc = subprocess.Popen(
        [*manage, "runconnector", "--port", str(port)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        for _ in range(100):
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200
        for _ in range(50):
            if "running." in (tmp_path / "run.log").read_text():
                break
            time.sleep(0.2)
        assert "Q Cluster" in (tmp_path / "run.log").read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (tmp_path / "run.log").read_text()
    assert "has stopped" in out and out.rstrip().endswith("Stopped.")
    assert (tmp_path / "field-encryption.key").exists()


def test_a_killed_worker_is_restarted_and_the_web_server_keeps_serving(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "CONNECTOR_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEY", "SECRET_KEY"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=settings.BASE_DIR, check=True, timeout=120)
    log_path = tmp_path / "run.log"
    log = open(log_path, "w+")  # noqa: SIM115 (the child writes to it until the end)
    proc = subprocess.Popen(
        [*manage, "runconnector", "--port", str(port)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def cluster_pids():
        return [pid for pid, command in children_of(proc.pid).items() if "qcluster" in command]

    try:
        assert wait_for(lambda: admin_status(port) == 200)
        [first] = wait_for(cluster_pids)
        assert wait_for(lambda: "running." in log_path.read_text())
        os.kill(first, signal.SIGKILL)

        assert wait_for(lambda: "Restarting the worker (restart 1)." in log_path.read_text())
        out = log_path.read_text()
        assert "The worker exited with code -9; restarting it in 1s" in out
        [second] = wait_for(cluster_pids)
        assert second != first
        assert admin_status(port) == 200  # intake never went down
        assert wait_for(lambda: log_path.read_text().count("running.") >= 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert log_path.read_text().rstrip().endswith("Stopped.")


def test_the_supervisor_backs_off_between_restarts_and_leaves_the_others_alone():
    messages = []
    supervisor = Supervisor(
        {
            "failing job": [sys.executable, "-c", "import sys; sys.exit(3)"],
            "steady job": [sys.executable, "-c", "import time; time.sleep(60)"],
        },
        messages.append,
    )
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        assert wait_for(lambda: any("restarting it in 2s" in m for m in messages), timeout=15)
    finally:
        supervisor.request_stop()
        runner.join(35)
    failing, steady = supervisor.children
    assert "The failing job exited with code 3; restarting it in 1s (the other processes keep running)." in (
        messages
    )
    assert failing.restarts >= 1 and steady.restarts == 0
    assert steady.process.returncode == -signal.SIGTERM  # stopped by the supervisor, not before
    assert messages[-1] == "Stopped."
