# Tasks of the template repository itself. The generated project has its own Makefile (template/Makefile.jinja).
.DEFAULT_GOAL := help
.PHONY: help bootstrap demo test test-fast lint bench bench-batch bench-feature-store docs locks tags clean

DEMO_DIR ?= build/demo
BENCH_TASKS ?= binary,multiclass,regression
BENCH_BATCH_ROWS ?= 1000000,10000000
BENCH_SECONDS ?= 15
export PATH := $(HOME)/.local/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export CKV_SKIP_PACKAGE_UPDATE_CHECK := true

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

bootstrap: ## Install the template's tools and checkers (uv, copier, pytest, checkov, promtool, ...)
	bash .ci/bootstrap

demo: bootstrap ## Render a project with the defaults into build/demo and run its pipeline end to end
	rm -rf $(DEMO_DIR)
	uv run copier copy --defaults --vcs-ref HEAD . $(DEMO_DIR)
	cd $(DEMO_DIR) && git init -q && git add -A \
		&& git -c user.name=demo -c user.email=demo@example.com commit -qm "Start from copier-mlops" \
		&& $(MAKE) setup pipeline test

test: bootstrap ## Run the whole test suite (render matrix, checkers, end-to-end, update round-trip)
	uv run pytest -n 2 --dist worksteal --durations=30

test-fast: ## Run the tests without the slow end-to-end ones
	uv run pytest -m "not slow"

bench: bootstrap ## Benchmark the golden path and the generated service per task (benchmarks/results, SUMMARY.md)
	uv run python benchmarks/bench.py --tasks $(BENCH_TASKS)

bench-batch: bootstrap ## Benchmark batch scoring at 1M and 10M rows: in memory, streamed, Spark local[2] (benchmarks/results/batch.md)
	uv run python benchmarks/bench_batch.py --rows $(BENCH_BATCH_ROWS)

bench-feature-store: bootstrap ## /predict by id (SQLite and Redis online stores) beside the full record (benchmarks/results/feature_store.md)
	uv run python benchmarks/bench_feature_store.py --seconds $(BENCH_SECONDS)

docs: ## Regenerate the options reference from copier.yml and build the docs site (build/site)
	uv run python hooks/options_reference.py
	uv run mkdocs build --strict --site-dir build/site

locks: ## Re-lock the uv.lock every render ships, per dependency profile (locks/); LOCKS_ARGS=--upgrade moves all
	uv run python hooks/locks.py $(LOCKS_ARGS)

tags: ## Create the missing release tags vX.Y.Z from releases.toml (annotated, CHANGELOG section as message)
	uv run python hooks/release_tags.py

lint: ## Lint the template's own Python (hooks/, tests/)
	uv run ruff check hooks tests benchmarks
	uv run ruff format --check hooks tests benchmarks

lint-workflows: ## Lint this repository's own .github/ (actionlint with shellcheck, zizmor, the JSON schemas)
	uv run actionlint
	uv run zizmor --offline .github
	uv run check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	uv run check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

clean: ## Remove build output
	rm -rf build .pytest_cache
