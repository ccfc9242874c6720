# The README's two commands: `make run` (install + start the app) and `make test` (install + all tests).
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: setup setup-test run test lint wheel bench-parser clean

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

# A wheel (and sdist) in dist/ that carries static/ with the vendored files: `pip install dist/*.whl` serves anywhere.
wheel: setup-test
	$(BIN)/python -m build --no-isolation

bench-parser: setup
	$(BIN)/python bench/parser.py $(ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor .setup-stamp* build dist *.egg-info
