#!/usr/bin/env bash
# Run the connector: web server and task workers together, in the foreground.
# Ctrl-C stops both. Defaults: SQLite in var/, the ORM broker, and the sandbox on.
set -euo pipefail
EXTRAS="" source "$(dirname "$0")/bootstrap.sh"
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
export SANDBOX_ENABLED="${SANDBOX_ENABLED:-1}"
export CONNECTOR_HOST="${CONNECTOR_HOST:-127.0.0.1}" CONNECTOR_PORT="${CONNECTOR_PORT:-8000}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://$CONNECTOR_HOST:$CONNECTOR_PORT}"
export PYTHONUNBUFFERED=1
python manage.py migrate --noinput -v0
python manage.py createcachetable -v0
python manage.py ensure_admin
echo "Starting the web server on $PUBLIC_BASE_URL and the task workers (Ctrl-C stops both)..."
exec python manage.py runconnector --addr "$CONNECTOR_HOST" --port "$CONNECTOR_PORT"
