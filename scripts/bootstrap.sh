# Sourced by run.sh and test.sh: makes .venv with Python 3.11 and installs the
# dependencies from the lock file (requirements/base.lock, or requirements/test.lock with
# EXTRAS=test: every package pinned with its hashes, `pip install --require-hashes`), then
# the project itself without dependencies, whenever the lock or pyproject.toml has changed.
# `make lock` regenerates the locks (README, "Updating dependencies").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"

find_python() {
  for cand in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)" || { echo "ml-connector needs Python 3.11 or 3.12 (set PYTHON=/path/to/python3.11)." >&2; exit 1; }
  echo "Creating the virtual environment in $VENV with $($PY --version)..."
  "$PY" -m venv "$VENV" || { echo "python -m venv failed: on Debian/Ubuntu install python3-venv." >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

mkdir -p "$ROOT/var"
lock="requirements/${EXTRAS:-base}.lock"
[ -f "$lock" ] || { echo "No lock file $lock (make lock makes it)." >&2; exit 1; }
# The stamp is the hash of the lock file and pyproject.toml: a change to either reinstalls.
digest() { cat "requirements/$1.lock" pyproject.toml | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }
installed() { [ -f "requirements/$1.lock" ] && [ "$(cat "$VENV/.installed-$1" 2>/dev/null)" = "$(digest "$1")" ]; }
# The test install includes everything the base install has: running after `make test` installs nothing.
if ! installed "${EXTRAS:-base}" && ! { [ -z "${EXTRAS:-}" ] && installed test; }; then
  echo "Installing ml-connector and its dependencies from $lock; details in var/pip.log..."
  if ! { "$VENV/bin/python" -m pip install --require-hashes -r "$lock" &&
         "$VENV/bin/python" -m pip install --no-deps -e .; } >"$ROOT/var/pip.log" 2>&1; then
    tail -20 "$ROOT/var/pip.log" >&2; echo "Installing failed; see var/pip.log." >&2; exit 1
  fi
  digest "${EXTRAS:-base}" > "$VENV/.installed-${EXTRAS:-base}"
fi
export PATH="$VENV/bin:$PATH"
