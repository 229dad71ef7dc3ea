# The two commands of the README: `make run` and `make test`.
VENV := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup setup-test run test lint eval bench

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

# The local demo lets anyone on this machine ask (the widget on / has no key); on the internet, set RAG_API_KEYS
# and a public widget key instead (README, "The chat widget").
run: setup
	RAG_PUBLIC_ASK=$${RAG_PUBLIC_ASK:-true} $(VENV)/rag serve --host $(HOST) --port $(PORT) --ingest-seeds

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
