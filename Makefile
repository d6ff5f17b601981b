# `make demo` and `make test` set up .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.doublewin-installed
TEST_STAMP := $(VENV)/.doublewin-test-installed
ZOO_STAMP := $(VENV)/.doublewin-zoo-installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt
# pip byte-compiles what it installs on one core; compileall does it on every core (about a
# minute less on 2 cores). A file that does not compile is left to the import, as without it.
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true

.PHONY: demo demo-vit test lint mutants setup clean-venv cluster-deps

setup: $(STAMP)

# Reinstall only when the package definition or the pins change. The demo needs the package
# alone; the tests add their extras (pytest, ruff, torchattacks, Ray, submitit).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@$(COMPILE)
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[test]'
	@$(COMPILE)
	@touch $(TEST_STAMP)

$(ZOO_STAMP): $(STAMP)
	$(PIP) -e '.[zoo]'
	@$(COMPILE)
	@touch $(ZOO_STAMP)

demo: $(STAMP)
	$(BIN)/doublewin demo

# The demo on a small timm ViT (configs/demo-vit.yaml); timm comes with the zoo extra.
demo-vit: $(ZOO_STAMP)
	$(BIN)/doublewin demo --vit

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

# What the cluster tests need from the machine besides the Python packages (Ray comes with the
# test extras): Slurm and munge from Debian's packages for tests/test_slurm.py. Needs root and
# apt-get; without them it says so and installs nothing (the Slurm tests then skip, outside CI).
cluster-deps:
	@if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then \
		echo "cluster-deps: slurm and munge are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "cluster-deps: installing slurm-wlm and munge (apt-get)"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; \
	else \
		echo "cluster-deps: slurm and munge are missing and need root with apt-get; the Slurm tests will skip"; \
	fi

# The mutation gate (docs/testing.md): run by developers, not by CI. About 35 minutes on 2 cores;
# a second run retests only what changed.
mutants: $(TEST_STAMP)
	$(PIP) -e '.[mutants]'
	$(BIN)/mutmut run
	$(BIN)/python tools/mutation_score.py $(BIN)/mutmut

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

clean-venv:
	rm -rf $(VENV)
