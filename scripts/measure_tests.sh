#!/usr/bin/env bash
# Time both passes of .ci/run (junit XML into var/timing/), then print the table by group
# (scripts/test_timing.py), against the "before" files when BEFORE_DIR holds sqlite.xml and postgres.xml.
# Run it on an otherwise idle machine: the figures are only as quiet as the machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/var/timing}"
mkdir -p "$OUT"
start=$(date +%s)
CI_JUNIT_DIR="$OUT" bash .ci/run 2>&1 | tee "$OUT/ci.log"
echo "whole .ci/run: $(( $(date +%s) - start )) s" | tee -a "$OUT/ci.log"
BEFORE=()
if [ -n "${BEFORE_DIR:-}" ]; then
  BEFORE=(--before "sqlite=$BEFORE_DIR/sqlite.xml" --before "postgres=$BEFORE_DIR/postgres.xml")
fi
.venv/bin/python scripts/test_timing.py "${BEFORE[@]}" \
  --after "sqlite=$OUT/sqlite.xml" --after "postgres=$OUT/postgres.xml"
