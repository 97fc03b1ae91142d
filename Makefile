# The two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := tests/interop/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
BUF := $(NODE_DIR)/node_modules/.bin/buf
# Without npm, make test still runs: the Node.js interop test then says it is skipped.
NODE_FOR_TESTS := $(if $(shell command -v npm),$(NODE_STAMP))

.PHONY: run test proto lint node bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# buf and the Node interop client's packages, as locked. (`npm install`, not `npm ci`: the
# lock lacks buf's optional builds for other platforms, which the registry here lacks.)
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

## Serve on GRPC_LISTEN (default 127.0.0.1:50051), embedded SQLite under ./var unless DATABASE_URL is set.
run: $(STAMP)
	$(PY) -m service serve

## The whole test suite; starts a throwaway PostgreSQL cluster when its server binaries are present.
test: $(STAMP) $(NODE_FOR_TESTS)
	$(PY) -m pytest $(PYTEST_ARGS)

## Regenerate generated/ from protos/ (commit the result).
proto: $(STAMP)
	$(PY) -m service.protogen

## Benchmarks against same-run baselines (QUICK=1: about a minute).
bench: $(STAMP)
	$(PY) -m tests.bench $(if $(QUICK),--quick)

## ruff and mypy (generated/ excluded from both), buf lint, and buf breaking against main.
lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests
	$(VENV)/bin/mypy
	cd protos && ../$(BUF) lint
	cd protos && ../$(BUF) breaking --against '../.git#branch=main,subdir=protos'

## The Node.js interop client's packages (make test installs them too).
node: $(NODE_STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache
