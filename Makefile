# LinkDesk: `make run` starts the whole product, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian's chromium, which the browser tests drive (never a downloaded one).
CHROMIUM ?= /usr/bin/chromium
# What a target needs from the system: installed when root, else named in one line (scripts/needs).
NEEDS := PYTHON='$(PYTHON)' CHROMIUM='$(CHROMIUM)' scripts/needs "make $(or $(MAKECMDGOALS),install)"
# The browser tests need Chromium unless PYTEST_ARGS leaves them out (-m "not browser").
TEST_NEEDS := $(if $(findstring not browser,$(PYTEST_ARGS)),,chromium)

.PHONY: run test fuzz chaos lint format install clean test-needs
# Random cases per API operation and caller in `make fuzz` (the suite's own run sends 5).
FUZZ_EXAMPLES ?= 50

$(STAMP): pyproject.toml
	@$(NEEDS) venv
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/linkdesk up

# Checked before the venv is built, so a missing browser stops `make test` at once.
test-needs:
	$(if $(TEST_NEEDS),@$(NEEDS) $(TEST_NEEDS))

test: test-needs $(STAMP)
	LINKDESK_TEST_CHROMIUM='$(CHROMIUM)' $(BIN)/pytest $(PYTEST_ARGS)

# A long fuzzing campaign over every API operation and caller (tests/api/test_fuzz.py); prints
# its figures. LINKDESK_TEST_DATABASE_URL runs it on PostgreSQL.
fuzz: $(STAMP)
	LINKDESK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -m fuzz tests/api/test_fuzz.py $(PYTEST_ARGS)

# The chaos campaign (bench/chaos.py, results in RELIABILITY.md), not part of `make test`:
# LinkDesk's processes killed under a workload, then lost, stuck and doubled work counted.
# On SQLite unless CHAOS_DATABASE_URL is set; that database's public schema is DROPPED first.
CHAOS_MINUTES ?= 3
CHAOS_SEED ?= 1
CHAOS_DATABASE_URL ?=
CHAOS_ARGS ?=

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --minutes $(CHAOS_MINUTES) --seed $(CHAOS_SEED) \
		$(if $(CHAOS_DATABASE_URL),--database-url '$(CHAOS_DATABASE_URL)') $(CHAOS_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
