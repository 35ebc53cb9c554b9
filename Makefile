# Conveyor: `make dev` runs the stack, `make test` runs the tests. `make help` lists the rest.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The stack's variables that matter most (`make help` lists them; .env.example has all).
# Give them on the command line (make dev BROKER=rabbitmq), in the environment, or in .env.
##: BROKER             the broker when CELERY_BROKER_URL is unset: redis (default) or rabbitmq
##: REDIS_PORT         the development Redis's port, which the default broker URL follows (6379)
##: RABBITMQ_PORT      the development RabbitMQ's port, likewise (5672)
##: DEV_BROKERS        all: make dev starts Redis and RabbitMQ (default: the broker in use)
##: CELERY_BROKER_URL  the broker's URL (redis://, amqp://); when set, it wins over BROKER
##: DATABASE_URL       the database (default: SQLite in .run/db.sqlite3)
##: WEB_PORT           the web's port under make dev (8000)
STACK_VARIABLES := BROKER REDIS_PORT RABBITMQ_PORT DEV_BROKERS CELERY_BROKER_URL DATABASE_URL WEB_PORT
# Those given on make's command line reach the stack (the others are in the environment).
$(foreach name,$(STACK_VARIABLES),$(if $(filter command line,$(origin $(name))),$(eval export $(name))))

PYTHON ?= python3
VENV ?= .venv
#: The PostgreSQL pass of `make test` uses this server (the database is created by the tests).
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/conveyor
#: `make faults` and `make bench` create and drop their scratch databases on this server.
POSTGRES_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
#: Extra options of `python -m faults`, e.g. FAULTS_ARGS='--seed 1407 --only headline'.
FAULTS_ARGS ?=
#: `make cluster-check`'s size: full (600 payments) or quick (90, as CI runs it).
CLUSTER_PROFILE ?= full
#: Extra options of `python -m bench`, e.g. BENCH_ARGS='--broker redis --system celery --system conveyor'.
BENCH_ARGS ?=
#: Extra options of `python -m tests.compose.check`, e.g. COMPOSE_ARGS='--broker rabbitmq'.
COMPOSE_ARGS ?=
#: Set to 1 to make `make test` fail when PostgreSQL does not answer (CI does).
REQUIRE_POSTGRES ?= 0
#: Test processes run side by side (pytest-xdist). The tests mostly wait on brokers and
#: workers, so one more than the cores keeps them busy; each process starts its own brokers.
TEST_PROCESSES ?= $(shell echo $$(( $$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2) + 1 )))
PYTEST := pytest -n $(TEST_PROCESSES) --dist worksteal
#: `make test-oldest` runs the tests with the oldest Celery and kombu Conveyor
#: supports, the versions nixpkgs (the Nix flake) provides, in a virtualenv of their own.
OLDEST_VENV ?= .venv-oldest
OLDEST_PINS ?= 'celery[redis]~=5.6.0' 'kombu~=5.6.0' 'django-ninja~=1.4.0'

# Inside `nix develop` the shell already provides every tool; elsewhere a virtualenv does.
ifdef IN_NIX_SHELL
INSTALLED :=
else
INSTALLED := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
endif

.PHONY: help install migrate dev test test-quick test-sqlite test-postgres test-oldest faults faults-quick cluster-check compose-check lint format bench bench-quick bench-health clean

help: ## List the targets and the variables that matter
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (make dev BROKER=rabbitmq, or in the environment, or in .env):"
	@sed -n 's/^##: /  /p' $(MAKEFILE_LIST)
	@echo "  PYTHON, VENV, TEST_PROCESSES, POSTGRES_TEST_URL: see the top of the Makefile"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Conveyor needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version)." >&2; exit 1; }
	@echo "Installing Conveyor and its development dependencies into $(VENV) (once; about a minute)..."
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install -e '.[dev]' | grep -E --line-buffered '^(Collecting|Successfully)'; exit $${PIPESTATUS[0]}
	@touch $@

install: $(INSTALLED) ## Create .venv and install Conveyor with its development dependencies

migrate: $(INSTALLED) ## Apply database migrations
	python manage.py migrate --noinput

dev: migrate ## Run the broker in use (Redis unless BROKER=rabbitmq), web, worker and beat under honcho (Ctrl-C stops all)
	@# honcho ends with 130 after a Ctrl-C: a clean stop, not an error
	PYTHONUNBUFFERED=1 honcho start; status=$$?; [ $$status -eq 130 ] || exit $$status

test: test-sqlite test-postgres ## Run the whole test suite on SQLite, then on PostgreSQL

test-quick: $(INSTALLED) ## Run the tests that need no broker (pytest -m "not broker", seconds)
	env -u DATABASE_URL pytest -m "not broker"

test-sqlite: $(INSTALLED) ## Run the test suite on SQLite
	env -u DATABASE_URL $(PYTEST)

test-postgres: $(INSTALLED) ## Run the test suite on PostgreSQL ($(POSTGRES_TEST_URL))
	@if python -m apps.delivery.processes.brokers answers '$(POSTGRES_TEST_URL)'; then \
		DATABASE_URL='$(POSTGRES_TEST_URL)' $(PYTEST); \
	elif [ '$(REQUIRE_POSTGRES)' = 1 ]; then \
		echo 'PostgreSQL does not answer at $(POSTGRES_TEST_URL).' >&2; exit 1; \
	else \
		echo 'PostgreSQL does not answer at $(POSTGRES_TEST_URL): the PostgreSQL pass did not run.'; \
	fi

$(OLDEST_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e '.[dev]' $(OLDEST_PINS)
	@touch $@

test-oldest: $(OLDEST_VENV)/.installed ## Run the test suite on SQLite with Celery, kombu 5.6 and django-ninja 1.4 (nixpkgs' versions)
	env -u DATABASE_URL $(OLDEST_VENV)/bin/$(PYTEST)

faults: $(INSTALLED) ## The fault suite: every scenario, both brokers, both databases (~36 min)
	python -m faults --profile full --postgres-url '$(POSTGRES_ADMIN_URL)' $(FAULTS_ARGS)

faults-quick: $(INSTALLED) ## The fault suite's CI-sized run: both brokers, SQLite (~7 min)
	python -m faults --profile quick $(FAULTS_ARGS)

cluster-check: $(INSTALLED) ## A three-node RabbitMQ cluster loses its queue's leader: payments counted (~2 min)
	python -m faults.cluster --profile $(CLUSTER_PROFILE)

compose-check: $(INSTALLED) ## docker-compose up, verified step by step on Redis, then RabbitMQ (~4 min; needs Docker)
	python -m tests.compose.check $(COMPOSE_ARGS)

lint: $(INSTALLED) ## Check style (ruff lint and format)
	ruff check .
	ruff format --check .

format: $(INSTALLED) ## Fix style (ruff format and safe fixes)
	ruff check --fix .
	ruff format .

bench: $(INSTALLED) ## Conveyor beside bare Celery and others: drains, latency, enqueue cost (~25 min)
	POSTGRES_ADMIN_URL='$(POSTGRES_ADMIN_URL)' python -m bench --profile full $(BENCH_ARGS)

bench-quick: $(INSTALLED) ## The benchmark's short run: figures, not a pass or fail (~5 min)
	POSTGRES_ADMIN_URL='$(POSTGRES_ADMIN_URL)' python -m bench --profile quick $(BENCH_ARGS)

bench-health: $(INSTALLED) ## Print how long each health check takes (needs make dev's broker)
	python -m tests.benchmarks.health_checks

clean: ## Remove the virtualenvs and the run directory (broker data, SQLite database)
	rm -rf $(VENV) $(OLDEST_VENV) .run
