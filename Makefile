# `make demo` and `make test` set up .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.doublewin-installed

.PHONY: demo test lint mutants setup clean-venv

setup: $(STAMP)

# Reinstall only when the package definition or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/doublewin demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The mutation gate (docs/testing.md): run by developers, not by CI. About 35 minutes on 2 cores;
# a second run retests only what changed.
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutants]'
	$(BIN)/mutmut run
	$(BIN)/python tools/mutation_score.py $(BIN)/mutmut

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

clean-venv:
	rm -rf $(VENV)
