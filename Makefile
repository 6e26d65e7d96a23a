# Two commands for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install kafka lint typecheck schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## kafka: fetch the bundled Apache Kafka's jars from Maven Central (pinned in infra/kafka/pom.xml)
kafka: install
	$(BIN)/intake kafka fetch

## run: start the broker (if none answers), topics, worker and web server on the embedded defaults
run: kafka
	$(BIN)/intake up

## test: lint, type-check and the whole suite, with the real broker and servers it starts itself
test: kafka lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check connectors streams schemas sinks infra tests

typecheck: install
	$(BIN)/mypy

## schemas: re-export the JSON Schema files unit systems read (a test fails when they are stale)
schemas: install
	$(BIN)/intake schemas export schemas/json

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
