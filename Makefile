# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.weightwatch-installed
PYTEST_ARGS ?= -m "not slow"
# two workers, one test file each at a time (module fixtures are built once); PYTEST_WORKERS=0 runs in-process
PYTEST_WORKERS ?= 2
# OpenMP threads that wait by sleeping, not spinning: two workers each running torch, TensorFlow and LightGBM
# on two cores otherwise steal each other's CPU (a fresh clone measured 254 s with spinning, 211 s without)
OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install test test-all demo bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	# torch first: on this machine the CPU wheel 2.13.0 lies on disk; any other pulls CUDA builds
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[all]" --group test
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	OMP_WAIT_POLICY=$(OMP_WAIT_POLICY) $(BIN)/python -m pytest $(PYTEST_ARGS) -n $(PYTEST_WORKERS) --dist loadfile -q -ra --durations=15

test-all: PYTEST_ARGS =
test-all: test

demo: $(STAMP)
	$(BIN)/python -m weightwatch.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
