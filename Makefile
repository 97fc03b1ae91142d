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

.PHONY: run test proto lint node bench mutate clean

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

# make mutate's score: mutants the unit tests detect (killed, or timed out) over all mutants
# but those mutmut skipped. Survivors, mutants no unit test reaches ("no tests"), suspicious
# ones and crashes all count against it.
MUTATION_MIN ?= 90
define MUTATION_SCORE
import json, sys
s = json.load(open("mutants/mutmut-cicd-stats.json"))
detected, counted = s["killed"] + s["timeout"], s["total"] - s["skipped"]
score = 100 * detected / counted if counted else 0.0
print(
    f"mutation score {score:.1f} % = (killed {s['killed']} + timeouts {s['timeout']})"
    f" / (total {s['total']} - skipped {s['skipped']});"
    f" survived {s['survived']}, no tests {s['no_tests']}, suspicious {s['suspicious']},"
    f" segfaults {s['segfault']}"
)
minimum = float(sys.argv[1])
sys.exit(0 if score >= minimum else f"mutation score below {minimum:g} %")
endef
export MUTATION_SCORE

## Mutation testing (mutmut) of the pure domain modules against tests/unit; fails below 90 %.
mutate: $(STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run
	@echo "Not killed (mutmut show NAME shows one):"
	@$(VENV)/bin/mutmut results
	@$(VENV)/bin/mutmut export-cicd-stats >/dev/null
	@$(PY) -c "$$MUTATION_SCORE" $(MUTATION_MIN)

## The Node.js interop client's packages (make test installs them too).
node: $(NODE_STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache mutants
