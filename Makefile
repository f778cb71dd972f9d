# FaceWarden: `make run` sets up and starts the service; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench fuzz scenario setup system-deps services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# SoftHSM2 backs the PKCS#11 key provider's tests, Chromium the report pages' browser test;
# PostgreSQL backs the storage tests.
system-deps:
	bash scripts/ensure-system-deps.sh

services:
	bash scripts/ensure-services.sh

# The liveness models are read from ../shared (never copied here) unless FACEWARDEN_PAD_MODEL_DIR says otherwise.
PAD_DIR := $(wildcard ../shared/models/pad)
run: setup
	$(BIN)/facewarden init
	$(if $(PAD_DIR),FACEWARDEN_PAD_MODEL_DIR=$${FACEWARDEN_PAD_MODEL_DIR:-$(abspath $(PAD_DIR))}) $(BIN)/facewarden serve

# One test process per core (2 on the CI machine), each test file kept on one process so that a module's
# fixtures (decoded clips, built attacks) are made once; `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 2
test: setup system-deps services
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

lint: setup
	$(BIN)/ruff check src tests bench scripts

# The governance walk-through of the README, over real HTTPS: consent, payment, police request, review,
# search, double confirmation, withdrawal, transparency report, audit verification.
scenario: setup
	$(BIN)/python scripts/governance_scenario.py

# The long fuzzing campaign of the decoders and of every endpoint as every role, on SQLite and PostgreSQL
# (>= 10,000 images, 1,000 videos, 5,000 API cases per backend): JSON to stdout, exit 1 on any 5xx or hang.
fuzz: setup services
	$(BIN)/python bench/fuzz.py $(FUZZ_ARGS)

bench: setup
	$(BIN)/python bench/bench_enrol.py
	$(BIN)/python bench/bench_latency.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_gallery.py
	$(BIN)/python bench/bench_soak.py
	$(BIN)/python bench/bench_crash.py

clean:
	rm -rf $(VENV) build *.egg-info
