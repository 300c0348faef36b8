# The only entry points a person needs: run, test, bench (and lock for maintainers).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501

export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test bench lint format typecheck lock init api clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the lock file changes.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

init: $(STAMP)
	$(BIN)/switchboard init

run: init
	$(BIN)/streamlit run app.py --server.port $(PORT)

api: init
	$(BIN)/switchboard api --port $(or $(API_PORT),8600)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy checks bench/ too: CI never runs `make bench`, so a renamed import would rot there unseen.
lint: $(STAMP)
	$(BIN)/ruff check core ui pages tests bench app.py
	$(BIN)/ruff format --check core ui pages tests bench app.py
	$(BIN)/mypy
	$(BIN)/mypy bench

# Rewrite the tree in the one house style that `make lint` checks.
format: $(STAMP)
	$(BIN)/ruff format core ui pages tests bench app.py
	$(BIN)/ruff check --fix --select I core ui pages tests bench app.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Maintainers: re-resolve the pinned, hashed lock file from pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet "pip-tools>=7.4"
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--extra libsql --extra dev -o requirements.lock pyproject.toml
	@! grep -E '^litellm==1\.82\.(7|8)\b' requirements.lock || (echo "refusing a malicious litellm release" && exit 1)

clean-venv:
	rm -rf $(VENV)
