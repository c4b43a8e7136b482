.PHONY: run test lint
run:  ## run the connector (web + workers) with the sandbox
	@scripts/run.sh
test: ## install what the tests need and run them all
	@scripts/test.sh
lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
