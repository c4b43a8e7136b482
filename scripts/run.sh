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
if [ "$SANDBOX_ENABLED" = "1" ]; then
  # Talk to the built-in emulators unless real addresses are configured.
  export XERO_AUTHORIZE_URL="${XERO_AUTHORIZE_URL:-$PUBLIC_BASE_URL/sandbox/xero/login/identity/connect/authorize}"
  export XERO_IDENTITY_URL="${XERO_IDENTITY_URL:-$PUBLIC_BASE_URL/sandbox/xero/identity}"
  export XERO_CONNECTIONS_URL="${XERO_CONNECTIONS_URL:-$PUBLIC_BASE_URL/sandbox/xero/api/connections}"
  export XERO_API_URL="${XERO_API_URL:-$PUBLIC_BASE_URL/sandbox/xero/api/api.xro/2.0}"
  export PIPEDRIVE_API_URL="${PIPEDRIVE_API_URL:-$PUBLIC_BASE_URL/sandbox/pipedrive}"
  export PIPEDRIVE_OAUTH_URL="${PIPEDRIVE_OAUTH_URL:-$PUBLIC_BASE_URL/sandbox/pipedrive}"  # + /oauth/authorize, /oauth/token
fi
if [ "$SANDBOX_ENABLED" = "1" ]; then
  # The sandbox's control token (X-Sandbox-Token for /sandbox/_webhooks/, _faults, _counters, _reset):
  # one random token per data folder, kept readable by this user only, the same for web and workers.
  if [ -z "${SANDBOX_CONTROL_TOKEN:-}" ]; then
    TOKEN_FILE="${CONNECTOR_DATA_DIR:-var}/sandbox-control-token"
    ( umask 077; mkdir -p "$(dirname "$TOKEN_FILE")"
      [ -s "$TOKEN_FILE" ] || python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$TOKEN_FILE" )
    SANDBOX_CONTROL_TOKEN="$(cat "$TOKEN_FILE")"
  fi
  export SANDBOX_CONTROL_TOKEN
fi
python manage.py migrate --noinput -v0
python manage.py createcachetable -v0
python manage.py ensure_admin
if [ "$SANDBOX_ENABLED" = "1" ]; then
  # Demo organisations and a demo Pipedrive company, once; credentials kept for reference.
  # umask 077: the file (demo passwords and tokens) is readable by this user only.
  ( umask 077; { python manage.py sandbox_xero_seed && python manage.py sandbox_pipedrive_seed; } \
    > "${CONNECTOR_DATA_DIR:-var}/sandbox-credentials.txt" )
  # A ready sync pair between the demo accounts, so changes flow at once (skipped once it exists):
  # set up through the connector's own services, over HTTP, once the web server below answers.
  # SANDBOX_DEMO_PAIR=0 leaves it out, to try the guided setup ("Set up a sync") from scratch.
  if [ "${SANDBOX_DEMO_PAIR:-1}" = "1" ]; then python manage.py sandbox_demo_pair --wait 120 & fi
  echo "Sandbox: Xero and Pipedrive emulators at $PUBLIC_BASE_URL/sandbox/ (demo credentials in ${CONNECTOR_DATA_DIR:-var}/sandbox-credentials.txt)"
fi
echo "Starting the web server on $PUBLIC_BASE_URL and the task workers (Ctrl-C stops both)..."
exec python manage.py runconnector --addr "$CONNECTOR_HOST" --port "$CONNECTOR_PORT"
