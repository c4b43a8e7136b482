#!/usr/bin/env bash
# Run every benchmark (bench/run_all.py) and print each figure beside its goal; figures also go
# to var/bench/latest.json. Extra arguments go to bench/run_all.py, e.g.
#   scripts/bench.sh --changes 100 --records 50 --databases sqlite
# PostgreSQL and Redis: BENCH_POSTGRES_URL (a database name containing "bench"; dropped and
# created again) and BENCH_REDIS_URL (flushed); see bench/README.md.
set -euo pipefail
EXTRAS="" source "$(dirname "$0")/bootstrap.sh"
exec python bench/run_all.py "$@"
