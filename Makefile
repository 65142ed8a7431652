# One Makefile for people and CI: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
# Two installs in one environment: the demo needs only Assay, its runtime dependencies and
# skl2onnx (it trains its two small models);
# the tests add the dev extras (Spark, PostgreSQL, S3, browsers' drivers...), several times
# larger. `make demo` on a fresh clone installs the first only.
BASE := $(VENV)/.installed-base-$(HASH)
DEV := $(VENV)/.installed-dev-$(HASH)

.PHONY: demo test lint typecheck venv clean bench mlserver mlflow azurite

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)

$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sklearn]'
	@rm -f $(VENV)/.installed-base-*
	@touch $(BASE)

# torch (TorchScript tests) is pinned and installed on its own: the CPU build, not the CUDA one
# a bare `pip install torch` may pick.
TORCH ?= torch==2.13.0

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet '$(TORCH)'
	@rm -f $(VENV)/.installed-*
	@touch $(DEV) $(BASE)

# MLServer, for the tests of models behind an inference server, in an environment of its own
# (its pins clash with Assay's); onnxruntime serves the ONNX twins through a custom runtime;
# tritonclient is the reference client of the endpoint benchmark.
MLSERVER_VENV ?= .venv-mlserver
MLSERVER_PINS := mlserver==1.7.1 mlserver-sklearn==1.7.1 onnxruntime==1.32.0 tritonclient[http]==2.73.0
MLSERVER := $(MLSERVER_VENV)/.installed-$(shell echo '$(MLSERVER_PINS)' | sha256sum | cut -c1-12)

$(MLSERVER):
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet $(MLSERVER_PINS)
	@rm -f $(MLSERVER_VENV)/.installed-*
	@touch $(MLSERVER)

mlserver: $(MLSERVER)

# An MLflow tracking server with a registry, for the tests of models:/ references (its pins
# clash with Assay's too; Assay itself uses the mlflow-skinny client).
MLFLOW_VENV ?= .venv-mlflow
MLFLOW_PINS := mlflow==3.17.2 onnx onnxruntime
MLFLOW := $(MLFLOW_VENV)/.installed-$(shell echo '$(MLFLOW_PINS)' | sha256sum | cut -c1-12)

$(MLFLOW):
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet $(MLFLOW_PINS)
	@rm -f $(MLFLOW_VENV)/.installed-*
	@touch $(MLFLOW)

mlflow: $(MLFLOW)

# Azurite, Microsoft's Azure Storage emulator, for the abfs:// tests (npm; Node 18+).
AZURITE := .azurite/node_modules/.bin/azurite-blob

$(AZURITE):
	npm install --prefix .azurite --silent --no-audit --no-fund azurite@3.35.0

azurite: $(AZURITE)

venv: $(DEV)

demo: $(BASE)
	ASSAY_HOME=$${ASSAY_HOME:-.assay} $(BIN)/assay demo --out demo-output

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(DEV)
	$(BIN)/mypy

# The test files are shared out to one worker per core (at most 4), a whole file per worker: the
# module-scoped servers (Spark, PostgreSQL, Chromium) start once per file as before, and two
# workers halved CI's pytest time (31 to 15 minutes). PYTEST_WORKERS= runs them in one process.
PYTEST_WORKERS ?= -n auto --maxprocesses=4 --dist loadfile

test: $(DEV) $(MLSERVER) $(MLFLOW) $(AZURITE) lint typecheck
	$(BIN)/python -m pytest $(PYTEST_WORKERS) --durations=25  # the slowest tests, for keeping CI under 30 minutes

bench: $(DEV)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(MLSERVER_VENV) $(MLFLOW_VENV) .azurite .assay demo-output .pytest_cache .mypy_cache .ruff_cache test-artifacts
