# RecOps: `make demo` and `make test` are the quick start; everything installs from uv.lock.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: bootstrap install demo test test-full-data test-fast data airflow lint bench bench-quick compose-config clean

bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# --compile-bytecode: every `recops`, Airflow task and dbt/Feast child process imports Airflow, Feast,
# MLflow and GX; without .pyc files (PYTHONDONTWRITEBYTECODE=1 is common in CI) each one compiles
# them again: 14 s instead of 8 s per process on 2 cores.
.venv/.recops-installed: pyproject.toml uv.lock | bootstrap
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.recops-installed

demo: install
	$(RUN) recops demo

test: install
	$(RUN) pytest -n 2 --dist loadfile --no-loadscope-reorder -p no:cacheprovider --durations=15 -m "not full_data" $(PYTEST_ARGS)

test-full-data: install
	$(RUN) pytest -n 2 --dist loadfile --no-loadscope-reorder -p no:cacheprovider --durations=15 -m full_data $(PYTEST_ARGS)

test-fast: install
	$(RUN) pytest -n 2 -p no:cacheprovider -m "not integration and not slow" $(PYTEST_ARGS)

data: install
	$(RUN) recops data fetch

airflow: install
	$(RUN) recops airflow up

lint: install
	$(RUN) ruff check .
	$(RUN) python -m recops.app.architecture .
	$(RUN) sqlfluff lint dbt_project/models

bench-quick: install
	$(RUN) python benchmarks/pipeline.py --quick

bench: install
	$(RUN) python benchmarks/pipeline.py --events 100000
	$(RUN) python benchmarks/pipeline.py --events 1000000

# docker-compose.yml resolves with a dummy value for every secret of .env.example (which also
# serves as the env file, so a local .env is not read); with RECOPS_USER_SALT empty it must fail
# and name it. tests/deploy/test_compose.py checks every secret and much more.
COMPOSE_CONFIG := docker-compose -f docker-compose.yml --env-file .env.example config --quiet
COMPOSE_DUMMY_SECRETS := $(shell sed -n 's/^\([A-Z][A-Z0-9_]*\)=$$/\1=compose-config-check/p' .env.example)

compose-config:
	env $(COMPOSE_DUMMY_SECRETS) $(COMPOSE_CONFIG)
	@if out=$$(env $(COMPOSE_DUMMY_SECRETS) RECOPS_USER_SALT= $(COMPOSE_CONFIG) 2>&1); then \
		echo "docker-compose config passed without RECOPS_USER_SALT" >&2; exit 1; fi; \
	grep -q ': set RECOPS_USER_SALT' <<<"$$out" || { echo "$$out" >&2; exit 1; }; \
	echo "docker-compose config refuses to run without RECOPS_USER_SALT"

clean:
	rm -rf .recops
