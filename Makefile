.PHONY: run test lint bench
run:  ## run the connector (web + workers) with the sandbox
	@scripts/run.sh
test: ## install what the tests need and run them all
	@scripts/test.sh
bench: ## run every benchmark and print each figure beside its goal (bench/README.md)
	@scripts/bench.sh $(BENCH_ARGS)
lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
