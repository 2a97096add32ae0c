# Voxmill: `make run` starts the product (embedded mode), `make test` runs the whole suite.
# Each target does its own set-up on a fresh Debian machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
HELM := $(TOOLS)/helm/helm
# Installed by scripts/install-chart-tools.sh; its copy of the lockfile marks a finished install.
CHART_TOOLS := $(TOOLS)/chart-tools/package-lock.json
# Installed by scripts/install-ui-tools.sh (axe-core for the browser tests' accessibility checks).
UI_TOOLS := $(TOOLS)/ui-tools/package-lock.json
PORT ?= 8000
MARS := model-store/joe.mar
RUN := .run
# The Python packages, one per part of the architecture (docs/architecture.md).
PACKAGES := contract text_processing audio handlers synthesis messaging worker api gateway voices \
            cli devtools

.PHONY: help run test lint typecheck unit integration e2e deploy-test mar torchserve torchserve-stop \
        stack stack-down services browser helm chart-tools chart-schema bench clean loadtest ui-tools

help:
	@echo "make run              start Voxmill (embedded mode) on http://127.0.0.1:$(PORT)"
	@echo "make test             the whole suite: lint, types, unit, integration, e2e, deploy"
	@echo "make mar              build model-store/joe.mar (the default voice)"
	@echo "make torchserve       start TorchServe on 127.0.0.1:8080 with the built archives"
	@echo "make torchserve-stop  stop it"
	@echo "make stack            distributed mode: TorchServe, 2 workers, API (Postgres + RabbitMQ)"
	@echo "make stack-down       stop the stack"
	@echo "make bench            run the benchmarks in bench/"
	@echo "make loadtest         Locust against the local stack for LOADTEST_TIME (never in make test)"
	@echo "make chart-schema     regenerate the chart's values.schema.json and README tables from values.yaml"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

$(MARS): $(STAMP) $(wildcard handlers/*.py handlers/backends/*.py text_processing/*.py text_processing/*/*.py audio/*.py contract/*.py) model-store/joe/model-config.yaml
	$(BIN)/voxmill build-mar --piper-default joe --output-dir model-store

mar: $(MARS)

run: $(STAMP) $(MARS)
	$(BIN)/voxmill api --mode embedded --host 127.0.0.1 --port $(PORT)

services:
	bash scripts/ensure-services.sh

browser:
	bash scripts/ensure-browser.sh

helm: $(HELM)
$(HELM):
	bash scripts/install-helm.sh $(TOOLS)

ui-tools: $(UI_TOOLS)
$(UI_TOOLS): scripts/ui-tools/package-lock.json
	bash scripts/install-ui-tools.sh $(TOOLS)

chart-tools: $(CHART_TOOLS)
$(CHART_TOOLS): scripts/chart-tools/package-lock.json
	bash scripts/install-chart-tools.sh $(TOOLS)

# values.yaml is the one source of the chart's parameter docs and checks (helm/voxmill/README.md,
# "Changing values"); tests/deploy/test_chart_docs.py fails while the generated files are stale.
chart-schema: $(STAMP) $(CHART_TOOLS)
	$(BIN)/python scripts/chart_schema.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(PACKAGES) scripts/chart_schema.py

test: $(STAMP) services browser $(HELM) $(CHART_TOOLS) $(UI_TOOLS) $(MARS) lint typecheck
	PATH=$(abspath $(TOOLS)/helm):$(abspath $(BIN)):$$PATH $(BIN)/pytest -p no:cacheprovider --timeout=900 tests

unit: $(STAMP)
	$(BIN)/pytest tests/unit

e2e: $(STAMP) $(MARS) browser $(UI_TOOLS)
	$(BIN)/pytest -p no:cacheprovider -m e2e tests/e2e

deploy-test: $(STAMP) $(HELM) $(CHART_TOOLS)
	PATH=$(abspath $(TOOLS)/helm):$$PATH $(BIN)/pytest -p no:cacheprovider -m deploy tests/deploy tests/unit/test_ts_gateway.py

torchserve: $(MARS)
	bash scripts/torchserve.sh start

torchserve-stop:
	bash scripts/torchserve.sh stop

stack: $(MARS) services
	bash scripts/stack.sh up

stack-down:
	bash scripts/stack.sh down

bench: $(MARS) services
	$(BIN)/python bench/handler_bench.py

# Locust in a virtual environment of its own (gevent patches the standard library); headless,
# bounded by LOADTEST_TIME, against the stack on PORT (started and stopped if none is running).
LOADTEST_VENV := .venv-loadtest
$(LOADTEST_VENV)/.installed: bench/requirements-loadtest.txt
	test -x $(LOADTEST_VENV)/bin/python || $(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/pip install -q -r bench/requirements-loadtest.txt
	touch $@

loadtest: $(STAMP) $(MARS) services $(LOADTEST_VENV)/.installed
	PORT=$(PORT) bash scripts/loadtest.sh

clean:
	rm -rf $(RUN) model-store/*.mar model-store/logs
