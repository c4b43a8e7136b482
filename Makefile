.PHONY: run test test-fast soak timing lint bench lock
run:  ## run the connector (web + workers) with the sandbox
	@scripts/run.sh
test: ## install what the tests need and run them all, on 2 workers (docs/testing.md; PYTEST_ARGS go to pytest)
	@scripts/test.sh $(PYTEST_ARGS)
test-fast: ## the edit loop: the unit and db tiers, ruff, no installs of browsers or node (under 2 minutes)
	@TEST_FAST=1 scripts/test.sh $(PYTEST_ARGS)
soak: ## the deep runs: the spec fuzzing at 500 examples an operation, the kill run at 2000 records
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} RESILIENCE_KILL_RECORDS=$${RESILIENCE_KILL_RECORDS:-2000} \
	  scripts/test.sh -m "fuzz or resilience" $(PYTEST_ARGS)
timing: ## both passes of .ci/run with junit XML into var/timing/, then the time table (scripts/measure_tests.sh)
	@scripts/measure_tests.sh
bench: ## run every benchmark and print each figure beside its goal (bench/README.md)
	@scripts/bench.sh $(BENCH_ARGS)
lock: ## regenerate requirements/base.lock and test.lock (pinned, hashed) from pyproject.toml
	@scripts/lock.sh $(LOCK_ARGS)
lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
