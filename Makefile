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

.PHONY: demo demo-vit test lint mutants setup clean-venv cluster-deps gpu-check gpu-wheels

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

# The prepared GPU check (tools/gpu_check.py): on a lent GPU, with the machine's own python3 and
# the wheels `make gpu-wheels` put in .whl/ (that machine reaches no package registry). Without
# CUDA it says so in one line and exits 0.
OUT ?= gpu-check
gpu-check:
	python3 tools/gpu_check.py --out $(OUT)

# What the GPU machine lacks of doublewin's dependencies, as wheels for its Python 3.12.
GPU_WHEELS := torch-pruning==1.6.1 torchattacks==3.5.1
gpu-wheels:
	python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
		--platform manylinux2014_x86_64 --platform any -d .whl $(GPU_WHEELS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

clean-venv:
	rm -rf $(VENV)
