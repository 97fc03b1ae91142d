# The two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test proto lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

## Serve on GRPC_LISTEN (default 127.0.0.1:50051), embedded SQLite under ./var unless DATABASE_URL is set.
run: $(STAMP)
	$(PY) -m service serve

## The whole test suite; starts a throwaway PostgreSQL cluster when its server binaries are present.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Regenerate generated/ from protos/ (commit the result).
proto: $(STAMP)
	$(PY) -m service.protogen

## ruff and mypy (generated/ excluded from both).
lint: $(STAMP)
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/ruff format --check service tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
