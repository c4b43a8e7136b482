#!/usr/bin/env bash
# Run every test (and the linter, the type checker, the migrations check). Extra arguments go to pytest
# (`make test PYTEST_ARGS='-m backend'`). docs/testing.md: tiers, markers and timings.
#   TEST_WORKERS=N   pytest-xdist workers (default 2; 0: everything in this one process)
#   TEST_FAST=1      the edit loop (`make test-fast`): the unit and db tiers only, ruff only, and no
#                    installs of chromium or node
set -euo pipefail
EXTRAS="test" source "$(dirname "$0")/bootstrap.sh"
WORKERS="${TEST_WORKERS:-2}"
PARALLEL=()
[ "$WORKERS" = 0 ] || PARALLEL=(-n "$WORKERS" --dist loadgroup)
# schemathesis gives every generated operation of a spec the same test id, which xdist cannot schedule
# (it ran 2 of 66): with workers, the spec fuzzing runs in this process after the rest.
FUZZ_MODULE=tests/sandbox/test_fuzz.py
if [ -n "${TEST_FAST:-}" ]; then
  ruff check .
  ruff format --check . || { echo "Code not formatted: run ruff format ." >&2; exit 1; }
  exec python -m pytest "${PARALLEL[@]}" -m "unit or db" --ignore="$FUZZ_MODULE" "$@"
fi
# The browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$ROOT/var/apt-chromium.log" 2>&1 ||
      { tail -20 "$ROOT/var/apt-chromium.log" >&2; echo "Installing chromium failed (see var/apt-chromium.log)." >&2; }
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    [ -n "${CI:-}" ] && { echo "CI needs chromium for the browser tests and it could not be installed." >&2; exit 1; }
    echo "No chromium (install it: sudo apt-get install chromium): the browser tests will be skipped." >&2
  fi
fi
# Pipedrive's official Node client (tests/sandbox/test_pipedrive_sdk.py): Debian's node and npm, then the
# pinned package from tests/sdk/pipedrive_node/package-lock.json (npm ci, the test does the same if missing).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's nodejs and npm for the Pipedrive client test..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >"$ROOT/var/apt-nodejs.log" 2>&1 ||
      { tail -20 "$ROOT/var/apt-nodejs.log" >&2; echo "Installing nodejs failed (see var/apt-nodejs.log)." >&2; }
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [ -n "${CI:-}" ] && { echo "CI needs node and npm for the Pipedrive client test and they could not be installed." >&2; exit 1; }
    echo "No node/npm (install them: sudo apt-get install nodejs npm): the Pipedrive client test will be skipped." >&2
  fi
fi
SDK_DIR="$ROOT/tests/sdk/pipedrive_node"
if command -v npm >/dev/null 2>&1 && ! node -e 'process.exit(require(process.argv[1] + "/node_modules/pipedrive/package.json").version === require(process.argv[1] + "/package.json").dependencies.pipedrive ? 0 : 1)' "$SDK_DIR" 2>/dev/null; then
  (cd "$SDK_DIR" && npm ci --prefer-offline --no-audit --no-fund --ignore-scripts) >"$ROOT/var/npm-pipedrive-sdk.log" 2>&1 ||
    echo "npm ci in tests/sdk/pipedrive_node failed (see var/npm-pipedrive-sdk.log): the Pipedrive client test will try again." >&2
fi
mkdir -p "$ROOT/test-artifacts/screenshots"
echo "Database: ${DATABASE_URL:-embedded SQLite}; broker: ${REDIS_URL:+Redis $REDIS_URL}${REDIS_URL:-django-q2 ORM broker}"
ruff check .
ruff format --check . || { echo "Code not formatted: run ruff format ." >&2; exit 1; }
mypy || { echo "Type errors (mypy, files listed in pyproject.toml [tool.mypy])" >&2; exit 1; }
env -u DATABASE_URL -u REDIS_URL python manage.py makemigrations --check --dry-run --settings=config.settings_test >/dev/null ||
  { echo "Model changes without a migration: run python manage.py makemigrations" >&2; exit 1; }
names_tests() {  # whether the arguments name test files or folders (then they run as given)
  local arg
  for arg in "$@"; do [ -e "${arg%%::*}" ] && return 0; done
  return 1
}
if [ "${#PARALLEL[@]}" = 0 ] || names_tests "$@"; then
  exec python -m pytest "${PARALLEL[@]}" "$@"
fi
status=0
python -m pytest "${PARALLEL[@]}" --ignore="$FUZZ_MODULE" "$@" || status=$?
FUZZ_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --junitxml=*.xml) FUZZ_ARGS+=("${arg%.xml}-fuzz.xml") ;;
    *) FUZZ_ARGS+=("$arg") ;;
  esac
done
echo "=== the spec fuzzing ($FUZZ_MODULE), in one process"
fuzz_status=0
python -m pytest "$FUZZ_MODULE" "${FUZZ_ARGS[@]}" || fuzz_status=$?
[ "$fuzz_status" = 5 ] || [ "$fuzz_status" = 0 ] || status=$fuzz_status  # 5: nothing selected (-m backend)
exit "$status"
