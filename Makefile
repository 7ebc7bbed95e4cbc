# Each target does its own set-up: a fresh machine needs only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q
	$(BIN)/ruff check agenttape tests examples benchmarks
	$(BIN)/mypy agenttape

lint: $(STAMP)
	$(BIN)/ruff check agenttape tests examples benchmarks
	$(BIN)/mypy agenttape

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	for script in import_time lookup replay_tools replay_http load record_overhead instructions; do \
		$(BIN)/python benchmarks/$$script.py --quick || exit 1; \
	done

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
