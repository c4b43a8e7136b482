#!/usr/bin/env bash
# Run only the sandbox (Xero and Pipedrive emulators) as its own process, for
# benchmarks and for trying a connector installed elsewhere against it.
#   scripts/sandbox.sh [port]     (default 8100; data in var/sandbox/)
# Gunicorn serves the APIs; a second process sends the emulators' webhooks.
set -euo pipefail
EXTRAS="" source "$(dirname "$0")/bootstrap.sh"
PORT="${1:-8100}"
export DJANGO_DEBUG=1 SANDBOX_ENABLED=1 SANDBOX_WEBHOOK_AUTODELIVER=0 PYTHONUNBUFFERED=1
export CONNECTOR_DATA_DIR="${CONNECTOR_DATA_DIR:-$ROOT/var/sandbox}"
export PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
# The sandbox's control token (X-Sandbox-Token for /sandbox/_webhooks/, _faults, _counters, _reset):
# one random token per data folder, kept readable by this user only, the same for web and workers.
if [ -z "${SANDBOX_CONTROL_TOKEN:-}" ]; then
  TOKEN_FILE="${CONNECTOR_DATA_DIR:-var}/sandbox-control-token"
  ( umask 077; mkdir -p "$(dirname "$TOKEN_FILE")"
    [ -s "$TOKEN_FILE" ] || python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$TOKEN_FILE" )
  SANDBOX_CONTROL_TOKEN="$(cat "$TOKEN_FILE")"
fi
export SANDBOX_CONTROL_TOKEN
python manage.py migrate --noinput -v0
python manage.py createcachetable -v0
python manage.py sandbox_xero_seed
python manage.py sandbox_pipedrive_seed
# Poll the outbox every 50 ms: the default half second was most of the delay between a write and its webhook.
python manage.py sandbox_deliver --loop --interval 0.05 &
DELIVER=$!
trap 'kill $DELIVER 2>/dev/null; wait $DELIVER 2>/dev/null' EXIT
echo "Sandbox on $PUBLIC_BASE_URL/sandbox/ (Ctrl-C stops it; control token in ${CONNECTOR_DATA_DIR}/sandbox-control-token)"
gunicorn config.wsgi -b "127.0.0.1:$PORT" -w "${SANDBOX_WORKERS:-4}" --threads 4 --access-logfile - --log-level warning
