# RecOps: `make demo` and `make test` are the quick start; everything installs from uv.lock.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: bootstrap install demo test test-fast airflow lint bench bench-quick compose-config clean

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

.venv/.recops-installed: pyproject.toml uv.lock | bootstrap
	$(UV) sync --frozen
	@touch $@

install: .venv/.recops-installed

demo: install
	$(RUN) recops demo

test: install
	$(RUN) pytest -n 2 --dist loadfile -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

test-fast: install
	$(RUN) pytest -m "not integration and not slow" $(PYTEST_ARGS)

airflow: install
	$(RUN) recops airflow up

lint: install
	$(RUN) ruff check .
	$(RUN) sqlfluff lint dbt_project/models

bench-quick: install
	$(RUN) python benchmarks/pipeline.py --quick

bench: install
	$(RUN) python benchmarks/pipeline.py --events 100000
	$(RUN) python benchmarks/pipeline.py --events 1000000

compose-config:
	RECOPS_USER_SALT=$${RECOPS_USER_SALT:-compose-config-check} docker-compose -f docker-compose.yml config --quiet

clean:
	rm -rf .recops
