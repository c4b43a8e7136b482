"""The lock files both commands install from (security issue 22): every dependency pinned, with hashes.

`make run` installs requirements/base.lock and `make test` requirements/test.lock (scripts/bootstrap.sh),
with `pip install --require-hashes`, then the project itself with `--no-deps`; `make lock` makes them.
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BOOTSTRAP = (ROOT / "scripts" / "bootstrap.sh").read_text()

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def read_lock(name: str) -> dict[str, tuple[str, int]]:
    """{canonical name: (version, number of hashes)} of a lock file; refuses any line it cannot read."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / "requirements" / f"{name}.lock").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace():
            assert current is not None, f"{name}.lock: a continuation line before any package: {line!r}"
            if stripped.startswith("--hash"):
                assert HASH.match(stripped), f"{name}.lock: not a sha256 hash: {line!r}"
                version, hashes = entries[current]
                entries[current] = (version, hashes + 1)
            continue
        match = PIN.match(stripped)
        assert match, f"{name}.lock: not pinned with ==: {line!r}"
        current = canonicalize_name(match.group(1))
        assert current not in entries, f"{name}.lock names {current} twice"
        entries[current] = (match.group(2), 0)
    return entries


def names(requirements: list[str]) -> set[str]:
    """The distributions the requirements name, an extra's own package included (psycopg[binary])."""
    found = set()
    for text in requirements:
        requirement = Requirement(text)
        found.add(canonicalize_name(requirement.name))
        found |= {canonicalize_name(f"{requirement.name}-{extra}") for extra in requirement.extras}
    return found


BASE = names(PYPROJECT["project"]["dependencies"])
TEST = names(PYPROJECT["project"]["optional-dependencies"]["test"])


@pytest.mark.parametrize(("lock", "required"), [("base", BASE), ("test", BASE | TEST)])
def test_every_dependency_is_pinned_with_hashes_in_the_lock(lock, required):
    entries = read_lock(lock)
    missing = sorted(required - set(entries))
    assert not missing, f"requirements/{lock}.lock lacks {missing}: run make lock"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if hashes == 0)
    assert not unhashed, f"requirements/{lock}.lock has packages without a hash: {unhashed}"


def test_the_test_lock_has_the_base_lock_s_versions():
    base, test = read_lock("base"), read_lock("test")
    differ = {
        name: (version, test[name][0]) for name, (version, _) in base.items() if test[name][0] != version
    }
    assert not differ, f"base and test locks pin different versions: {differ}; run make lock"


def test_no_dependency_is_listed_twice_in_pyproject():
    for group in (
        PYPROJECT["project"]["dependencies"],
        PYPROJECT["project"]["optional-dependencies"]["test"],
    ):
        listed = [canonicalize_name(Requirement(text).name) for text in group]
        assert len(listed) == len(set(listed)), sorted({n for n in listed if listed.count(n) > 1})


def test_bootstrap_installs_only_from_the_lock_with_hashes():
    assert '-m pip install --require-hashes -r "$lock"' in BOOTSTRAP
    assert "-m pip install --no-deps -e ." in BOOTSTRAP
    assert 'lock="requirements/${EXTRAS:-base}.lock"' in BOOTSTRAP
    # No install that resolves dependencies itself (`pip install -e .[test]`, a bare package name).
    for line in BOOTSTRAP.splitlines():
        if "pip install" in line and "--upgrade pip" not in line:
            assert "--require-hashes" in line or "--no-deps" in line, line
    # The install stamp is the hash of the lock file and pyproject.toml together.
    assert re.search(r'cat "requirements/\$1\.lock" pyproject\.toml \| .*hashlib', BOOTSTRAP)


def test_both_commands_go_through_the_bootstrap():
    for script, extras in (("run.sh", 'EXTRAS=""'), ("test.sh", 'EXTRAS="test"')):
        text = (ROOT / "scripts" / script).read_text()
        assert f'{extras} source "$(dirname "$0")/bootstrap.sh"' in text


def test_this_environment_has_the_locked_versions():
    """The suite runs on what the test lock pins (the bootstrap reinstalls whenever the lock changes)."""
    differ = {}
    for name, (version, _) in read_lock("test").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            differ[name] = (version, None)
            continue
        if installed != version:
            differ[name] = (version, installed)
    assert not differ, f"locked vs installed: {differ} (make test reinstalls from the lock)"


def test_make_lock_regenerates_both_locks_with_hashes():
    assert "scripts/lock.sh" in (ROOT / "Makefile").read_text().split("\nlock:", 1)[1].split("\n")[1]
    script = (ROOT / "scripts" / "lock.sh").read_text()
    assert "--generate-hashes" in script
    assert "-o requirements/base.lock" in script and "--extra test -o requirements/test.lock" in script
    for lock in ("base", "test"):
        assert "#    make lock" in (ROOT / "requirements" / f"{lock}.lock").read_text()
