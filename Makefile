# The same commands the README and CI use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
STAMP := $(VENV)/.installed

.PHONY: install demo test test-sqlite test-postgresql lint typecheck drift bench-quick clean

$(STAMP): pyproject.toml verifier/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -e ./verifier
	touch $(STAMP)

install: $(STAMP)

## Start openpars with demo data on embedded SQLite (http://127.0.0.1:8000).
demo: install
	$(BIN)/openpars demo --db sqlite:///demo.db --credentials-out credentials.json

## Everything CI checks: lint, types, migrations drift, the suite on SQLite and PostgreSQL.
test: install lint typecheck test-sqlite test-postgresql

lint: install
	$(BIN)/ruff check src tests bench verifier
	$(BIN)/ruff format --check src tests bench verifier

typecheck: install
	$(BIN)/mypy

test-sqlite: install
	OPENPARS_TEST_BACKEND=sqlite ./scripts/pytest.sh tests verifier/tests

test-postgresql: install
	./scripts/ensure-postgres.sh
	OPENPARS_TEST_BACKEND=postgresql OPENPARS_TEST_PG_URL=$(PG_URL) ./scripts/pytest.sh tests

bench-quick: install
	for b in bench/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
