# The only entry points a person needs: run, test, bench (and lock for maintainers).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PORT   ?= 8501

export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test bench chaos lint format typecheck lock init api clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a lock file changes. Running needs requirements.lock alone;
# the test and dev tools (pytest, playwright, mypy, ruff) come from requirements-dev.lock.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(DEV_STAMP): requirements-dev.lock $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	touch $(DEV_STAMP)

init: $(STAMP)
	$(BIN)/switchboard init

# The Quick start's promise: a local run generates its own keys. An explicit
# SWITCHBOARD_MODE=production in the environment still wins.
run: export SWITCHBOARD_MODE ?= development
run: init
	$(BIN)/streamlit run app.py --server.port $(PORT)

api: init
	$(BIN)/switchboard api --port $(or $(API_PORT),8600)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy checks bench/ too: CI never runs `make bench`, so a renamed import would rot there unseen.
lint: $(DEV_STAMP)
	$(BIN)/ruff check core ui app_pages tests bench app.py
	$(BIN)/ruff format --check core ui app_pages tests bench app.py
	$(BIN)/mypy
	$(BIN)/mypy bench

# Rewrite the tree in the one house style that `make lint` checks.
format: $(DEV_STAMP)
	$(BIN)/ruff format core ui app_pages tests bench app.py
	$(BIN)/ruff check --fix --select I core ui app_pages tests bench app.py

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# Faults injected into a running API (kill, database outage, failing provider); ~8 minutes.
chaos: $(DEV_STAMP)
	$(BIN)/python -m bench.chaos

# Maintainers: re-resolve both pinned, hashed lock files from pyproject.toml. Each keeps
# its pins where it can, and the runtime lock starts from the dev lock's, so it stays a subset
# (tests/test_supply_chain.py checks that).
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet "pip-tools>=7.4"
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) \
		--extra libsql --extra build --extra dev -o requirements-dev.lock pyproject.toml
	cp requirements-dev.lock requirements.lock
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) \
		--extra libsql --extra build -o requirements.lock pyproject.toml
	@! grep -E '^litellm==1\.82\.(7|8)\b' requirements*.lock || (echo "refusing a malicious litellm release" && exit 1)

clean-venv:
	rm -rf $(VENV)
