"""The README's run command, run as a new user would: from a fresh clone, then stopped with Ctrl-C.

The clone is of this checkout's HEAD, in a temporary folder. To keep the test bounded, the bootstrap
is pointed (VENV, which scripts/bootstrap.sh honours) at the environment running the tests, already
installed from the same lock file and pyproject.toml, so it installs nothing; everything else (database, keys,
admin user, sandbox data, web server and workers) is made from nothing in the clone's data folder.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.app_process import ROOT, alive, command_line, ctrl_c, descendants, run_command

STOP_SECONDS = 20


def installed_from(clone: Path) -> bool:
    """Whether the test environment was installed from this clone's lock file and pyproject.toml (the
    stamp scripts/bootstrap.sh writes: their hash; else the bootstrap would install the clone into it)."""
    for extras in ("test", "base"):
        lock = clone / "requirements" / f"{extras}.lock"
        stamp = Path(sys.prefix) / f".installed-{extras}"
        if lock.exists() and stamp.exists():
            want = hashlib.sha256(lock.read_bytes() + (clone / "pyproject.toml").read_bytes()).hexdigest()
            if stamp.read_text().strip() == want:
                return True
    return False


def test_make_run_from_a_fresh_clone_serves_the_admin_and_ctrl_c_stops_web_and_workers(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    if not installed_from(clone):
        message = (
            "the test environment was installed from another lock file or pyproject.toml than HEAD's: "
            "run make test"
        )
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    command = ["make", "run"] if shutil.which("make") else ["scripts/run.sh"]

    with run_command(tmp_path, cwd=clone, command=command, demo_pair=True) as app:
        login = requests.get(f"{app.url}/admin/login/", timeout=10)
        assert login.status_code == 200 and "ml-connector" in login.text
        # The first-run messages the README shows.
        out = app.output()
        assert "Created the admin user for this installation." in out and f"Open     {app.url}/admin/" in out
        assert "Starting the web server" in out
        deadline = time.monotonic() + 60
        while (
            "running." not in app.output() and time.monotonic() < deadline
        ):  # django-q2: "Q Cluster … running."
            time.sleep(0.3)
        tree = descendants(app.process.pid)
        lines = {pid: command_line(pid) for pid in tree}
        assert any("runserver" in line for line in lines.values()), lines
        assert any("qcluster" in line for line in lines.values()), lines
        assert len(tree) >= 4, lines  # runconnector, the web server, the cluster and its workers

        ctrl_c(app.process)
        stopped_by = time.monotonic() + STOP_SECONDS
        while alive(tree | {app.process.pid}) and time.monotonic() < stopped_by:
            app.process.poll()  # reap the command itself, so it does not linger as a zombie
            time.sleep(0.2)
        left = {pid: command_line(pid) for pid in alive(tree | {app.process.pid})}
        assert left == {}, f"still running {STOP_SECONDS}s after Ctrl-C: {left}"
        out = app.output()
        assert "Stopping the web server and the workers..." in out and "Stopped." in out, out[-2000:]
        assert (app.data_dir / "first-run-login.txt").exists()
        assert (app.data_dir / "field-encryption.key").exists()
