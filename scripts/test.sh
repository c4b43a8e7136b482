#!/usr/bin/env bash
# Run every test (and the linter). Extra arguments go to pytest.
set -euo pipefail
EXTRAS="test" source "$(dirname "$0")/bootstrap.sh"
echo "Database: ${DATABASE_URL:-embedded SQLite}; broker: ${REDIS_URL:+Redis $REDIS_URL}${REDIS_URL:-django-q2 ORM broker}"
ruff check .
ruff format --check . || { echo "Code not formatted: run ruff format ." >&2; exit 1; }
mypy || { echo "Type errors (mypy, files listed in pyproject.toml [tool.mypy])" >&2; exit 1; }
env -u DATABASE_URL -u REDIS_URL python manage.py makemigrations --check --dry-run --settings=config.settings_test >/dev/null ||
  { echo "Model changes without a migration: run python manage.py makemigrations" >&2; exit 1; }
exec python -m pytest "$@"
