"""The run command's supervisor: web and workers come up together and stop together."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from django.conf import settings


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
