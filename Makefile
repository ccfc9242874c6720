# The README's two commands: `make run` (install + start the app) and `make test` (install + all tests).
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: setup setup-test run test lint bench-parser clean

setup:
	bash scripts/setup.sh

setup-test:
	WITH_TEST=1 bash scripts/setup.sh

run: setup
	$(BIN)/face-studio serve $(ARGS)

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra $(ARGS)

lint:
	$(BIN)/ruff check .

bench-parser: setup
	$(BIN)/python bench/parser.py $(ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor .setup-stamp*
