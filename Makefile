# contactcenter: `make run` starts the product, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## run: set everything up and start the whole product (DEBUG on, demo data)
run: $(STAMP)
	DEBUG=$${DEBUG:-true} $(PY) manage.py serve

## test: run the whole test suite
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: run every benchmark script in tests/bench/ and print its figures
bench: $(STAMP)
	@set -e; for script in tests/bench/bench_*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks yet"; break; }; \
		echo "== $$script"; $(PY) "$$script"; \
	done

## lint: ruff check and format check
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
