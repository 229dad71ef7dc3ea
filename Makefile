# The two commands of the README: `make run` and `make test`.
VENV := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup setup-test run test lint eval bench

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

run: setup
	$(VENV)/rag serve --host $(HOST) --port $(PORT) --ingest-seeds

lint:
	$(VENV)/ruff check rag tests benchmarks
	$(VENV)/ruff format --check rag
	$(VENV)/mypy rag

test: setup-test lint
	$(VENV)/python -m pytest -q -p no:cacheprovider
	$(VENV)/rag eval --set all --check

eval: setup
	$(VENV)/rag eval --set all

bench: setup
	$(VENV)/python benchmarks/bench_ingest_search.py --quick
