# The same commands the README and CI use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
STAMP := $(VENV)/.installed

.PHONY: install demo test test-sqlite test-postgresql coverage coverage-report lint typecheck drift bench-quick clean

$(STAMP): pyproject.toml verifier/pyproject.toml package.json package-lock.json
	@# WeasyPrint (the PDF renewal report) loads pango at run time; say so now, not in a test.
	@ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so' && ldconfig -p | grep -q 'libpangoft2-1.0.so' || { \
	  echo "make install: the pango library is missing (WeasyPrint renders the oversight PDF report with it)." >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -e ./verifier
	@# The browser tests: axe-core from npm (pinned in package-lock.json), Debian's chromium.
	@command -v npm >/dev/null || { \
	  echo "make install: npm is missing (the browser tests load axe-core from npm)." >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --silent
	./scripts/install-chromium.sh
	touch $(STAMP)

install: $(STAMP)

## Start openpars with demo data on embedded SQLite (http://127.0.0.1:8000).
demo: install
	$(BIN)/openpars demo --db sqlite:///demo.db --credentials-out credentials.json

## Everything CI checks: lint, types, migrations drift, the suite on SQLite and PostgreSQL.
# The two suites run at once (one per core: about 35 minutes where one after the other took
# about 60); each one's output is printed whole when it ends, so neither interleaves the other.
test: install lint typecheck
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgresql
	$(MAKE) --no-print-directory coverage-report

lint: install
	$(BIN)/ruff check src tests bench verifier
	$(BIN)/ruff format --check src tests bench verifier

typecheck: install
	$(BIN)/mypy

# Branch coverage of the enforcement point, the audit log and governance (STYLE rule 11),
# measured on both databases and combined: row-level security runs only on PostgreSQL.
COV := --cov=openpars.access --cov=openpars.audit --cov=openpars.governance --cov-branch --cov-report=
COV_MIN ?= 99

test-sqlite: install
	OPENPARS_TEST_BACKEND=sqlite COVERAGE_FILE=.coverage.sqlite ./scripts/pytest.sh tests verifier/tests $(COV)

test-postgresql: install
	./scripts/ensure-postgres.sh
	OPENPARS_TEST_BACKEND=postgresql OPENPARS_TEST_PG_URL=$(PG_URL) COVERAGE_FILE=.coverage.postgresql ./scripts/pytest.sh tests $(COV)

## Combined branch coverage of access, audit and governance on both databases; fails below COV_MIN.
coverage: test-sqlite test-postgresql
	$(MAKE) --no-print-directory coverage-report

# The gate alone, over the data the two suites left (.coverage.sqlite, .coverage.postgresql).
coverage-report:
	$(BIN)/coverage combine --keep --data-file=.coverage .coverage.sqlite .coverage.postgresql
	$(BIN)/coverage report --data-file=.coverage --precision=2 --show-missing --skip-covered --fail-under=$(COV_MIN)

bench-quick: install
	for b in bench/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
