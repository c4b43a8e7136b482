#!/usr/bin/env bash
# Regenerate requirements/base.lock and requirements/test.lock from pyproject.toml: every package
# pinned (==) with the sha256 of each of its files on the index, for `pip install --require-hashes`.
# pip-tools runs from its own virtual environment (.venv-tools/), never the project's.
# Extra arguments go to pip-compile (--upgrade, --upgrade-package NAME).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${LOCK_TOOLS_VENV:-$ROOT/.venv-tools}"
if [ ! -x "$TOOLS/bin/pip-compile" ]; then
  PY="${PYTHON:-python3.11}"
  command -v "$PY" >/dev/null 2>&1 || PY=python3
  echo "Installing pip-tools into $TOOLS..."
  "$PY" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q "pip-tools>=7.4,<8"
fi
mkdir -p requirements
export CUSTOM_COMPILE_COMMAND="make lock"  # what the locks' header says made them
compile() {
  "$TOOLS/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links "$@"
}
compile -o requirements/base.lock "$@" pyproject.toml
compile --extra test -o requirements/test.lock "$@" pyproject.toml
echo "Wrote requirements/base.lock and requirements/test.lock; the next make run / make test installs them."
