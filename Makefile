.PHONY: run test lint bench lock
run:  ## run the connector (web + workers) with the sandbox
	@scripts/run.sh
test: ## install what the tests need and run them all
	@scripts/test.sh
bench: ## run every benchmark and print each figure beside its goal (bench/README.md)
	@scripts/bench.sh $(BENCH_ARGS)
lock: ## regenerate requirements/base.lock and test.lock (pinned, hashed) from pyproject.toml
	@scripts/lock.sh $(LOCK_ARGS)
lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
