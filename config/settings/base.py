"""Settings shared by every environment, read from the environment through ``env``.

``dev``, ``test`` and ``prod`` import this module and change only what differs.
Every variable is listed, with its default, in ``.env.example`` and docs/configuration.md.
"""

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from kombu import Exchange, Queue

from apps.delivery import celery_overrides
from apps.delivery.processes.brokers import BROKERS, development_broker_url
from config.environment import (
    ConfigurationError,
    broker_kind,
    broker_transport,
    check_result_backend,
    database_from_env,
    default_result_backend,
    env,
    schedule_from_env,
)
from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# A .env file in the project root is read if present; real environment variables win.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

#: Every environment variable Conveyor reads. This is env's own set: each variable the
#: settings read (dev's and prod's too) joins it as it is read. A variable that is set,
#: is not in it, and looks like the misspelling of one that is gets a warning
#: (apps/delivery/checks.py).
ENVIRONMENT_VARIABLES = env.names_read

#: Where development services and processes keep their state (git-ignored).
RUN_DIR = Path(env.str("RUN_DIR", default=str(BASE_DIR / ".run"))).resolve()
RUN_DIR.mkdir(parents=True, exist_ok=True)

# ------------------------------------------------------------------------------
# Django
# ------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The HTTP API's OpenAPI schema and docs page (apps/api/).
    "ninja",
    "apps.delivery",
    "apps.common",
    "apps.users",
    "apps.payments",
]

MIDDLEWARE = [
    # /healthz before anything else: probes need no allowed host and make no log line.
    "apps.delivery.middleware.HealthCheckMiddleware",
    # /metrics likewise: a scraper may use any address; METRICS_TOKEN guards it.
    "apps.delivery.middleware.MetricsMiddleware",
    # Then the correlation id, so every log line of a request carries it.
    "apps.delivery.middleware.CorrelationIdMiddleware",
    # Every error under /api/ answers in one JSON shape, whoever raised it.
    "apps.api.middleware.ProblemDetailsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# A request the CSRF check refuses: a JSON problem under /api/, Django's page elsewhere.
CSRF_FAILURE_VIEW = "apps.api.problems.csrf_failure"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------------------
# Logging: one configuration for Django, Celery and the apps, to stdout
# (config/logs.py, apps/delivery/logs/). JSON unless development says otherwise.
# ------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING_CONFIG = "apps.delivery.logs.setup.configure"
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

# ------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------
# SQLite needs no set-up; production and docker-compose use PostgreSQL
# (DATABASE_URL=postgres://user:password@host:5432/name). No other database.
DATABASES = {
    "default": database_from_env("DATABASE_URL", default="sqlite:///%s" % (RUN_DIR / "db.sqlite3")),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # Web, workers and beat share the file: wait for a lock instead of failing,
        # take the write lock when a transaction starts (no upgrade deadlocks), and
        # let readers proceed while one process writes.
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL;",
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# ------------------------------------------------------------------------------
# Celery: broker and results
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ------------------------------------------------------------------------------
# Without CELERY_BROKER_URL, the development broker BROKER names (redis or rabbitmq) on
# this machine, on the port make dev's Procfile starts it on: one place for both.
BROKER = env.str("BROKER", default="redis")
if BROKER not in BROKERS:
    raise ConfigurationError("BROKER=%s: it must be one of %s." % (BROKER, ", ".join(BROKERS)))
REDIS_PORT = env.int("REDIS_PORT", default=6379, minimum=1)
RABBITMQ_PORT = env.int("RABBITMQ_PORT", default=5672, minimum=1)
if max(REDIS_PORT, RABBITMQ_PORT) > 65535:
    raise ConfigurationError(
        "REDIS_PORT=%d and RABBITMQ_PORT=%d must be ports (1 to 65535)."
        % (REDIS_PORT, RABBITMQ_PORT)
    )
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=development_broker_url(BROKER, redis_port=REDIS_PORT, rabbitmq_port=RABBITMQ_PORT),
)
broker_kind(CELERY_BROKER_URL)  # a bad URL stops start-up here, naming the variable
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=default_result_backend(CELERY_BROKER_URL)
)
# Redis or rpc://, and never the broker's own Redis database, however spelt.
check_result_backend(CELERY_RESULT_BACKEND, broker_url=CELERY_BROKER_URL)

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-retry-on-startup
# A worker started before its broker waits for it instead of exiting.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

#: The longest a process sending a task (a web request, say) waits on the broker. A
#: task enqueued on commit (the outbox) is sent by a worker's relay later if the broker
#: does not take it within this; a plain delay() raises instead of hanging.
ENQUEUE_TIMEOUT_SECONDS = env.float("ENQUEUE_TIMEOUT_SECONDS", default=2.0)
if not 0 < ENQUEUE_TIMEOUT_SECONDS <= 30:
    raise ConfigurationError(
        "ENQUEUE_TIMEOUT_SECONDS=%s must be above 0 and at most 30." % ENQUEUE_TIMEOUT_SECONDS
    )
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-timeout
CELERY_BROKER_CONNECTION_TIMEOUT = ENQUEUE_TIMEOUT_SECONDS
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-publish-retry-policy
# A publish is retried twice, quickly, and then fails: bounded by ENQUEUE_TIMEOUT_SECONDS
# with the connection timeout above.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": ENQUEUE_TIMEOUT_SECONDS / 4,
    "interval_max": ENQUEUE_TIMEOUT_SECONDS / 4,
}
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-backend-transport-options
# Redis results: a sender subscribes to its result before it sends the task; with Redis
# down, give up as the publish does (Celery's default is 20 attempts a second apart).
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": CELERY_TASK_PUBLISH_RETRY_POLICY}
#: How often a worker's outbox relay looks for messages the broker has not taken yet.
OUTBOX_RELAY_INTERVAL_SECONDS = env.float("OUTBOX_RELAY_INTERVAL_SECONDS", default=1.0, above=0)

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-expires
CELERY_RESULT_EXPIRES = timedelta(seconds=env.int("RESULT_EXPIRES_SECONDS", default=86400))
# A result the worker cannot store (backend briefly down) is retried, not dropped.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 10

# JSON only: a worker never unpickles what a stranger put on the broker.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True

# ------------------------------------------------------------------------------
# Celery: delivery guarantees
# ------------------------------------------------------------------------------
#: Hard and soft time limits of every task, in seconds (a task may lower them).
TASK_TIME_LIMIT_SECONDS = env.int("TASK_TIME_LIMIT_SECONDS", default=300)
TASK_SOFT_TIME_LIMIT_SECONDS = env.int("TASK_SOFT_TIME_LIMIT_SECONDS", default=270)
#: Redis: how long a delivered message may stay unacknowledged before the broker
#: hands it to another worker. It must exceed the longest task and the longest
#: countdown, or those run twice.
REDIS_VISIBILITY_TIMEOUT_SECONDS = env.int("REDIS_VISIBILITY_TIMEOUT_SECONDS", default=3600)

if not 0 < TASK_SOFT_TIME_LIMIT_SECONDS < TASK_TIME_LIMIT_SECONDS:
    raise ConfigurationError(
        "TASK_SOFT_TIME_LIMIT_SECONDS (%d) must be positive and below TASK_TIME_LIMIT_SECONDS (%d)."
        % (TASK_SOFT_TIME_LIMIT_SECONDS, TASK_TIME_LIMIT_SECONDS)
    )

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
# Acknowledge after the task ran: a worker that dies mid-task leaves the message on the broker.
CELERY_TASK_ACKS_LATE = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost
# A task whose pool process was killed goes back to the queue instead of being acknowledged.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-prefetch-multiplier
# Reserve one message per process: nothing waits behind a long task, little returns on a
# crash (unstarted messages go back to the queue either way). A worker of short tasks
# drains faster with more (make bench: 4 gives +55% on RabbitMQ).
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("WORKER_PREFETCH_MULTIPLIER", default=1)
if not 1 <= CELERY_WORKER_PREFETCH_MULTIPLIER <= 100:
    raise ConfigurationError(
        "WORKER_PREFETCH_MULTIPLIER=%d must be between 1 and 100."
        % CELERY_WORKER_PREFETCH_MULTIPLIER
    )
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-cancel-long-running-tasks-on-connection-loss
# After a lost connection the broker redelivers unacknowledged messages: stop their
# running copies rather than let them run twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit
# Limits stay below the Redis visibility timeout, so no running task is handed out again.
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = TASK_SOFT_TIME_LIMIT_SECONDS
# https://docs.celeryq.dev/en/stable/userguide/tasks.html#ignore-result
# Results are opt-in: a task that returns something a caller reads says so
# (ignore_result=False, as add does; or apply_async(..., ignore_result=False)). Most
# outcomes live in the database (a payment's status), and a stored result costs every
# task one write to the result backend, two with STARTED.
CELERY_TASK_IGNORE_RESULT = True
# A task that stores its result records STARTED too, so it tells "running" from "queued".
CELERY_TASK_TRACK_STARTED = True
# Task events feed monitors such as Flower; off unless asked for (they cost messages).
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("WORKER_SEND_TASK_EVENTS", default=False)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-hijack-root-logger
# The worker and beat log through LOGGING above, in the same format as everything else.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# https://docs.celeryq.dev/en/stable/userguide/routing.html
# One durable task queue, "default", on a topic exchange (RabbitMQ's native delayed
# delivery of countdowns needs a topic exchange).
TASK_QUEUE = "default"
TASK_EXCHANGE = Exchange("tasks", type="topic", durable=True)
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUE
CELERY_TASK_DEFAULT_EXCHANGE = TASK_EXCHANGE.name
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = TASK_EXCHANGE.type
CELERY_TASK_DEFAULT_ROUTING_KEY = TASK_QUEUE

#: How many times a message may be delivered without finishing (its worker died, it was
#: handed back) before the worker dead-letters it instead of running it again: a message
#: that kills its worker every time must not come back forever. The worker enforces it
#: (apps/delivery/celery_overrides/consumer.py), so it can change without the queues.
DELIVERY_LIMIT = env.int("DELIVERY_LIMIT", default=10)
#: The brokers' own limit behind the worker's (RabbitMQ's x-delivery-limit, the Redis
#: transport's), for a message no worker could look at. Fixed: the queue's arguments.
DELIVERY_LIMIT_BACKSTOP = 50
if not 0 < DELIVERY_LIMIT < DELIVERY_LIMIT_BACKSTOP:
    raise ConfigurationError(
        "DELIVERY_LIMIT=%d must be between 1 and %d."
        % (DELIVERY_LIMIT, DELIVERY_LIMIT_BACKSTOP - 1)
    )
#: Where messages that failed for good wait for an operator (apps/delivery/dead_letters/).
DEAD_LETTER_QUEUE = "dead_letter"
# Queue arguments are RabbitMQ's; Redis gets the same behaviour from
# apps/delivery/celery_overrides/redis_transport.py.
TASK_QUEUE_ARGUMENTS = {
    # Quorum queues are replicated, survive a broker restart and count deliveries.
    "x-queue-type": "quorum",
    "x-delivery-limit": DELIVERY_LIMIT_BACKSTOP,
    # A message rejected without requeue (a final failure) goes to the dead-letter
    # queue, and at-least-once: RabbitMQ keeps it until the dead-letter queue has it
    # (which needs reject-publish overflow).
    "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
    "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}

# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-transport-options
# Each transport reads its own keys and ignores the others'.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # RabbitMQ: publisher confirms, so delay() returns only once the broker has the message.
    "confirm_publish": True,
    # Redis: a message unacknowledged this long is handed out again.
    "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS,
    # Redis: look for such messages every 5 s (default: every 100 s).
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    # Redis: dead-lettering, as the task queue's arguments give it on RabbitMQ.
    "dead_letter_queue": DEAD_LETTER_QUEUE,
    "delivery_limit": DELIVERY_LIMIT_BACKSTOP,
}
# The Redis transport with dead-lettering (None: kombu's choice by URL scheme).
CELERY_BROKER_TRANSPORT = broker_transport(CELERY_BROKER_URL)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-consumer
# A consumer that dead-letters messages it cannot run instead of dropping some of them.
CELERY_WORKER_CONSUMER = celery_overrides.WORKER_CONSUMER
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-pool
# Prefork, replacing a dead pool process within half a second; on Celery 5.6, one that
# also acknowledges a task as it finishes during a warm shutdown, as 5.7 does itself.
CELERY_WORKER_POOL = celery_overrides.WORKER_POOL

# ------------------------------------------------------------------------------
# Retry policy of every task (a task may set its own max_retries / retry_backoff /
# retry_backoff_max). Transient failures only: see apps/delivery/failures.py.
# ------------------------------------------------------------------------------
TASK_MAX_RETRIES = env.int("TASK_MAX_RETRIES", default=3)
#: The first retry waits about this long; each further retry doubles it...
TASK_RETRY_BACKOFF_SECONDS = env.float("TASK_RETRY_BACKOFF_SECONDS", default=5.0)
#: ...up to this cap. Jitter picks between half and all of the delay.
TASK_RETRY_BACKOFF_MAX_SECONDS = env.float("TASK_RETRY_BACKOFF_MAX_SECONDS", default=600.0)

if TASK_MAX_RETRIES < 0 or TASK_RETRY_BACKOFF_SECONDS <= 0:
    raise ConfigurationError(
        "TASK_MAX_RETRIES must be 0 or more and TASK_RETRY_BACKOFF_SECONDS above 0."
    )
# On Redis a countdown waits in the worker, unacknowledged, before the task runs.
if REDIS_VISIBILITY_TIMEOUT_SECONDS <= TASK_RETRY_BACKOFF_MAX_SECONDS + TASK_TIME_LIMIT_SECONDS:
    raise ConfigurationError(
        "REDIS_VISIBILITY_TIMEOUT_SECONDS (%d) must exceed TASK_RETRY_BACKOFF_MAX_SECONDS plus "
        "TASK_TIME_LIMIT_SECONDS (%d), or a waiting retry or a running task is handed to a "
        "second worker."
        % (
            REDIS_VISIBILITY_TIMEOUT_SECONDS,
            TASK_RETRY_BACKOFF_MAX_SECONDS + TASK_TIME_LIMIT_SECONDS,
        )
    )

CELERY_TASK_QUEUES = (
    Queue(
        TASK_QUEUE,
        TASK_EXCHANGE,
        routing_key=TASK_QUEUE,
        durable=True,
        queue_arguments=TASK_QUEUE_ARGUMENTS,
    ),
)

# ------------------------------------------------------------------------------
# Simulated payment gateway (apps/payments/gateway.py)
# ------------------------------------------------------------------------------
#: Every charge fails transiently: the gateway is down.
GATEWAY_OUTAGE = env.bool("GATEWAY_OUTAGE", default=False)
#: Probability (0 to 1) that a charge fails transiently.
GATEWAY_FAILURE_RATE = env.float("GATEWAY_FAILURE_RATE", default=0.0)
#: How long the gateway takes to answer a charge, in milliseconds.
GATEWAY_LATENCY_MS = env.int("GATEWAY_LATENCY_MS", default=0, minimum=0)
if not 0 <= GATEWAY_FAILURE_RATE <= 1:
    raise ConfigurationError(
        "GATEWAY_FAILURE_RATE=%s must be between 0 and 1." % GATEWAY_FAILURE_RATE
    )

# ------------------------------------------------------------------------------
# Celery beat
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html
# ------------------------------------------------------------------------------
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
# One run per slot even if two beats run, and a heartbeat (apps/delivery/periodic.py).
CELERY_BEAT_SCHEDULER = "apps.delivery.celery_overrides.beat:SlotScheduler"
# Wake at least every 5 s: the heartbeat stays fresh and a changed schedule is seen soon.
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_BEAT_SCHEDULE = {
    # Every day at midnight UTC (CLEANUP_SCHEDULE: a crontab expression or seconds):
    # expired sessions, idempotency records and failure facts.
    "cleanup-every-midnight": {
        "task": "apps.common.tasks.perform_cleanup",
        "schedule": schedule_from_env("CLEANUP_SCHEDULE", "0 0 * * *"),
    },
    # Every day at midnight UTC: payments whose task never reached the broker.
    "requeue-pending-payments-every-midnight": {
        "task": "apps.payments.tasks.requeue_pending_payments",
        "schedule": crontab(minute=0, hour=0),
    },
    # Every day at midnight UTC: dead letters past DEAD_LETTER_RETENTION_DAYS (if set).
    "expire-dead-letters-every-midnight": {
        "task": "apps.delivery.tasks.expire_dead_letters",
        "schedule": crontab(minute=0, hour=0),
    },
}
#: For verification only: run every periodic task every N seconds instead.
BEAT_SCHEDULE_OVERRIDE_SECONDS = env.float("BEAT_SCHEDULE_OVERRIDE_SECONDS", default=0, minimum=0)
if BEAT_SCHEDULE_OVERRIDE_SECONDS:
    for _entry in CELERY_BEAT_SCHEDULE.values():
        _entry["schedule"] = timedelta(seconds=BEAT_SCHEDULE_OVERRIDE_SECONDS)

# ------------------------------------------------------------------------------
# Metrics for Prometheus (apps/delivery/metrics/): the web's /metrics, the worker's
# and beat's own ports. Each process group counts in RUN_DIR/metrics/<role>-<pid>.
# ------------------------------------------------------------------------------
#: A scrape must send "Authorization: Bearer <METRICS_TOKEN>"; unset: see below.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
#: Without a token, metrics are refused (403): production's rule; development serves
#: them to anyone who can reach them (localhost).
METRICS_TOKEN_REQUIRED = True
#: The worker's main process serves its pool's metrics on this port; 0: not served
#: (two workers on one machine need a port each).
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0, minimum=0)
#: Beat serves its metrics on this port; 0: not served.
BEAT_METRICS_PORT = env.int("BEAT_METRICS_PORT", default=0, minimum=0)
#: The address the worker's and beat's metrics ports listen on (0.0.0.0: every one).
METRICS_ADDRESS = env.str("METRICS_ADDRESS", default="127.0.0.1")
#: How often workers and beat report themselves, and the minute's figures, to the
#: operator console (apps/delivery/processes/reports.py).
PROCESS_REPORT_INTERVAL_SECONDS = env.float("PROCESS_REPORT_INTERVAL_SECONDS", default=15, above=0)
if max(WORKER_METRICS_PORT, BEAT_METRICS_PORT) > 65535:
    raise ConfigurationError(
        "WORKER_METRICS_PORT=%d and BEAT_METRICS_PORT=%d must be ports (1 to 65535), or 0 "
        "for none." % (WORKER_METRICS_PORT, BEAT_METRICS_PORT)
    )

# ------------------------------------------------------------------------------
# Housekeeping (the periodic tasks above)
# ------------------------------------------------------------------------------
#: Days a finished idempotency record is kept (a duplicate within them is skipped).
IDEMPOTENCY_RETENTION_DAYS = env.int("IDEMPOTENCY_RETENTION_DAYS", default=7)
#: Days failure facts of tasks that are no longer dead-lettered are kept.
FAILURE_RETENTION_DAYS = env.int("FAILURE_RETENTION_DAYS", default=30)
#: Days an outbox message is kept once the broker has it.
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=1)
#: Days a dead letter is kept before it is purged; unset: kept until an operator acts.
DEAD_LETTER_RETENTION_DAYS = env.int("DEAD_LETTER_RETENTION_DAYS", default=None)
#: A payment still pending after this long never reached the broker: it is enqueued again.
PAYMENT_PENDING_TIMEOUT_SECONDS = env.int("PAYMENT_PENDING_TIMEOUT_SECONDS", default=600)
